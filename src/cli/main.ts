// The `sandlot` command: the daemon, and client verbs for people and tests.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import YAML from 'yaml';
import { CONFIG_FLAGS, ConfigError, loadConfig, type ConfigFlag } from '../config/load.js';
import { defaultConfig } from '../config/defaults.js';
import { errorMessage } from '../errors.js';
import { createLogger } from '../observe/logger.js';
import { CriClient } from './client.js';

/** Exit codes scripts can rely on. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;
export const EXIT_SOCKET_IN_USE = 3;

const DAEMON_FLAGS = Object.keys(CONFIG_FLAGS) as ConfigFlag[];

interface Verb {
  summary: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const socketOption = { socket: { type: 'string' as const } };

function socketOf(values: Record<string, unknown>): string {
  const s = values.socket ?? process.env.SANDLOT_SOCKET ?? defaultConfig().socket_path;
  return String(s);
}

async function withClient<T>(values: Record<string, unknown>, fn: (c: CriClient) => Promise<T>): Promise<T> {
  const client = new CriClient(socketOf(values));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

const VERBS: Record<string, Verb> = {
  daemon: {
    summary: 'run the CRI daemon in the foreground',
    options: {
      config: { type: 'string' },
      ...Object.fromEntries(DAEMON_FLAGS.map((f) => [f, { type: 'string' as const }])),
    },
    async run(values) {
      const { startDaemon } = await import('../daemon.js');
      const { SocketInUseError } = await import('../cri/server.js');
      const loaded = loadConfig({
        configFile: values.config as string | undefined,
        flags: Object.fromEntries(DAEMON_FLAGS.map((f) => [f, values[f] as string | undefined])),
      });
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
  },
  config: {
    summary: 'print the effective configuration (defaults ← file ← env ← flags) as YAML',
    options: {
      config: { type: 'string' },
      ...Object.fromEntries(DAEMON_FLAGS.map((f) => [f, { type: 'string' as const }])),
    },
    async run(values) {
      const loaded = loadConfig({
        configFile: values.config as string | undefined,
        flags: Object.fromEntries(DAEMON_FLAGS.map((f) => [f, values[f] as string | undefined])),
      });
      if (loaded.file) process.stdout.write(`# from ${loaded.file}\n`);
      process.stdout.write(YAML.stringify(loaded.config));
      return EXIT_OK;
    },
  },
  version: {
    summary: 'ask the daemon for its name, version and CRI API version',
    options: socketOption,
    async run(values) {
      const v = await withClient(values, (c) => c.runtimeCall('Version', { version: 'v1' }));
      process.stdout.write(
        `RuntimeName:       ${v.runtime_name}\nRuntimeVersion:    ${v.runtime_version}\nRuntimeApiVersion: ${v.runtime_api_version}\n`,
      );
      return EXIT_OK;
    },
  },
  status: {
    summary: 'show the runtime and network conditions (--verbose: the daemon\'s info)',
    options: { ...socketOption, verbose: { type: 'boolean' } },
    async run(values) {
      const s = await withClient(values, (c) => c.runtimeCall('Status', { verbose: Boolean(values.verbose) }));
      for (const cond of s.status?.conditions ?? []) {
        const why = cond.status ? '' : `  ${cond.reason}: ${cond.message}`;
        process.stdout.write(`${String(cond.type).padEnd(14)} ${cond.status ? 'true' : 'false'}${why}\n`);
      }
      if (values.verbose) process.stdout.write(`${JSON.stringify(s.info, null, 2)}\n`);
      return EXIT_OK;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(VERBS).map((v) => v.length));
  const lines = Object.entries(VERBS).map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`);
  return [
    'usage: sandlot <verb> [flags]',
    '',
    'verbs:',
    ...lines,
    '',
    'Client verbs take --socket PATH (default /run/sandlot/sandlot.sock, or env SANDLOT_SOCKET).',
    `The daemon takes --config FILE and ${DAEMON_FLAGS.map((f) => `--${f}`).join(', ')}`,
    '(each also as env SANDLOT_<NAME>, e.g. SANDLOT_LOG_LEVEL).',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verbName, ...rest] = argv;
  if (verbName === undefined || verbName === '--help' || verbName === '-h' || verbName === 'help') {
    process.stdout.write(usage());
    return verbName === undefined ? EXIT_CONFIG : EXIT_OK;
  }
  const verb = VERBS[verbName];
  if (!verb) {
    process.stderr.write(`sandlot: unknown verb "${verbName}"\n\n${usage()}`);
    return EXIT_CONFIG;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...verb.options, help: { type: 'boolean' } }, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`sandlot ${verbName}: ${errorMessage(e)}\n`);
    return EXIT_CONFIG;
  }
  if (parsed.values.help) {
    const flags = Object.keys(verb.options).map((f) => `--${f}`).join(' ');
    process.stdout.write(`usage: sandlot ${verbName} ${flags}\n  ${verb.summary}\n`);
    return EXIT_OK;
  }
  try {
    return await verb.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`sandlot: ${e.message}\n`);
      return EXIT_CONFIG;
    }
    process.stderr.write(`sandlot ${verbName}: ${errorMessage(e)}\n`);
    return EXIT_FAILURE;
  }
}
