import { CONFIG_FLAGS, envName, loadConfig, type ConfigFlag } from '../../config/load.js';
import { errorMessage } from '../../errors.js';
import { createLogger } from '../../observe/logger.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_SOCKET_IN_USE, type Verb, type VerbOptions, type VerbValues } from '../verb.js';

export const DAEMON_FLAGS = Object.keys(CONFIG_FLAGS) as ConfigFlag[];

export const CONFIG_OPTIONS: VerbOptions = {
  config: { type: 'string', value: 'FILE', description: 'YAML configuration file (default /etc/sandlot/config.yaml if it exists; env SANDLOT_CONFIG)' },
  ...Object.fromEntries(
    DAEMON_FLAGS.map((f) => [
      f,
      {
        type: 'string' as const,
        value: f === 'preload' ? 'LIST' : 'VALUE',
        description: `sets ${CONFIG_FLAGS[f]}${f === 'preload' ? ' (comma-separated)' : ''} (env ${envName(f)})`,
      },
    ]),
  ),
};

export function loadFromValues(values: VerbValues) {
  return loadConfig({
    configFile: values.config as string | undefined,
    flags: Object.fromEntries(DAEMON_FLAGS.map((f) => [f, values[f] as string | undefined])),
  });
}

export const daemonVerb: Verb = {
  name: 'daemon',
  summary: 'run the CRI daemon in the foreground',
  options: CONFIG_OPTIONS,
  async run(values) {
    const { startDaemon } = await import('../../daemon.js');
    const { SocketInUseError } = await import('../../cri/server.js');
    const loaded = loadFromValues(values);
    const log = createLogger(loaded.config.log_level);
    let daemon;
    try {
      daemon = await startDaemon({ config: loaded.config, configFile: loaded.file, log });
    } catch (e) {
      log.fatal({ err: e }, 'starting sandlot');
      log.flush();
      process.stderr.write(`sandlot: starting the daemon: ${errorMessage(e)}\n`);
      return e instanceof SocketInUseError ? EXIT_SOCKET_IN_USE : EXIT_FAILURE;
    }
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log.info({ signal: sig }, 'shutting down');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await daemon.shutdown();
    log.flush();
    return EXIT_OK;
  },
};
