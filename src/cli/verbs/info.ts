// config, version, status: what a person asks first.
import YAML from 'yaml';
import { EXIT_OK, SOCKET_OPTION, withClient, type Verb } from '../verb.js';
import { CONFIG_OPTIONS, loadFromValues } from './daemon.js';

export const configVerb: Verb = {
  name: 'config',
  summary: 'print the effective configuration (defaults ← file ← env ← flags) as YAML',
  options: CONFIG_OPTIONS,
  async run(values) {
    const loaded = loadFromValues(values);
    if (loaded.file) process.stdout.write(`# from ${loaded.file}\n`);
    process.stdout.write(YAML.stringify(loaded.config));
    return EXIT_OK;
  },
};

export const versionVerb: Verb = {
  name: 'version',
  summary: 'ask the daemon for its name, version and CRI API version',
  options: SOCKET_OPTION,
  async run(values) {
    const v = await withClient(values, (c) => c.runtimeCall('Version', { version: 'v1' }));
    process.stdout.write(
      `RuntimeName:       ${v.runtime_name}\nRuntimeVersion:    ${v.runtime_version}\nRuntimeApiVersion: ${v.runtime_api_version}\n`,
    );
    return EXIT_OK;
  },
};

export const statusVerb: Verb = {
  name: 'status',
  summary: "show the runtime and network conditions (--verbose: the daemon's info)",
  options: { ...SOCKET_OPTION, verbose: { type: 'boolean' } },
  async run(values) {
    const s = await withClient(values, (c) => c.runtimeCall('Status', { verbose: Boolean(values.verbose) }));
    for (const cond of s.status?.conditions ?? []) {
      const why = cond.status ? '' : `  ${cond.reason}: ${cond.message}`;
      process.stdout.write(`${String(cond.type).padEnd(14)} ${cond.status ? 'true' : 'false'}${why}\n`);
    }
    if (values.verbose) process.stdout.write(`${JSON.stringify(s.info, null, 2)}\n`);
    return EXIT_OK;
  },
};
