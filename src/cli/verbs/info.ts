// config, version, status: what a person asks first.
import YAML from 'yaml';
import { loadConfig } from '../../config/load.js';
import { EXIT_OK, EXIT_USAGE, SOCKET_OPTION, withClient, type Verb, type VerbValues } from '../verb.js';
import { CONFIG_OPTIONS, loadFromValues } from './daemon.js';
import { parseInfo } from './pod.js';

export const configVerb: Verb = {
  name: 'config',
  summary: 'print the effective configuration (defaults ← file ← env ← flags) as YAML; `config check FILE` only validates FILE',
  usage: '[check FILE]',
  options: CONFIG_OPTIONS,
  // Nothing to wait for; a throw (a bad file) still becomes the rejection main reports.
  run: (values, positionals) => new Promise((resolve) => resolve(configCommand(values, positionals))),
};

function configCommand(values: VerbValues, positionals: string[]): number {
  if (positionals.length > 0) {
    const [sub, file, ...rest] = positionals;
    if (sub !== 'check' || file === undefined || rest.length > 0) {
      process.stderr.write(`sandlot config: usage: sandlot config [check FILE] (got "${positionals.join(' ')}")\n`);
      return EXIT_USAGE;
    }
    // The file over the embedded defaults, nothing from the environment: what a
    // daemon started with only --config FILE would run with. A bad key exits 2.
    loadConfig({ configFile: file, env: {} });
    process.stdout.write(`${file}: valid sandlot configuration\n`);
    return EXIT_OK;
  }
  const loaded = loadFromValues(values);
  if (loaded.file) process.stdout.write(`# from ${loaded.file}\n`);
  process.stdout.write(YAML.stringify(loaded.config));
  return EXIT_OK;
}

export const versionVerb: Verb = {
  name: 'version',
  summary: 'ask the daemon for its name, version and CRI API version',
  options: SOCKET_OPTION,
  async run(values) {
    const v = await withClient(values, (c) => c.runtimeCall('Version', { version: 'v1' }));
    process.stdout.write(`RuntimeName:       ${v.runtime_name}\nRuntimeVersion:    ${v.runtime_version}\nRuntimeApiVersion: ${v.runtime_api_version}\n`);
    return EXIT_OK;
  },
};

export const statusVerb: Verb = {
  name: 'status',
  summary: "show the runtime and network conditions (--verbose: the daemon's info)",
  options: { ...SOCKET_OPTION, verbose: { type: 'boolean', short: 'v', description: "also print the daemon's info (handlers, config, network) as JSON" } },
  async run(values) {
    const s = await withClient(values, (c) => c.runtimeCall('Status', { verbose: Boolean(values.verbose) }));
    for (const cond of s.status?.conditions ?? []) {
      const why = cond.status ? '' : `  ${cond.reason}: ${cond.message}`;
      process.stdout.write(`${String(cond.type).padEnd(14)} ${cond.status ? 'true' : 'false'}${why}\n`);
    }
    // The info values are JSON documents in strings (the CRI's map<string, string>): shown as the objects they are.
    if (values.verbose) process.stdout.write(`${JSON.stringify(parseInfo(s.info), null, 2)}\n`);
    return EXIT_OK;
  },
};
