// The `sandlot` command: the daemon, and client verbs for people and tests.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { errorMessage } from '../errors.js';
import { splitAtCommand } from './arg-split.js';
import { VERBS } from './registry.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './verb.js';

function usage(): string {
  const width = Math.max(...VERBS.map((v) => v.name.length));
  return [
    'usage: sandlot <verb> [flags]',
    '',
    'verbs:',
    ...VERBS.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`),
    '',
    'Client verbs take --socket PATH (default /run/sandlot/sandlot.sock, or env SANDLOT_SOCKET).',
    'The daemon takes --config FILE and the flags `sandlot daemon --help` lists',
    '(each also as env SANDLOT_<NAME>, e.g. SANDLOT_LOG_LEVEL).',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verbName, ...rest] = argv;
  if (verbName === undefined || verbName === '--help' || verbName === '-h' || verbName === 'help') {
    process.stdout.write(usage());
    return verbName === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const verb = VERBS.find((v) => v.name === verbName);
  if (!verb) {
    process.stderr.write(`sandlot: unknown verb "${verbName}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  let parsed;
  const options = { ...verb.options, help: { type: 'boolean' as const, short: 'h' } };
  const split = verb.leadingPositionals === undefined ? { flags: rest, command: [] } : splitAtCommand(rest, options, verb.leadingPositionals);
  try {
    parsed = parseArgs({ args: split.flags, options, allowPositionals: true });
    parsed.positionals.push(...split.command);
  } catch (e) {
    process.stderr.write(`sandlot ${verbName}: ${errorMessage(e)}\n`);
    return EXIT_USAGE;
  }
  if (parsed.values.help) {
    const flags = Object.keys(verb.options).map((f) => `[--${f}]`).join(' ');
    process.stdout.write(`usage: sandlot ${verbName} ${flags}${verb.usage ? ` ${verb.usage}` : ''}\n  ${verb.summary}\n`);
    return EXIT_OK;
  }
  try {
    return await verb.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`sandlot: ${e.message}\n`);
      return EXIT_USAGE;
    }
    const details = (e as { details?: unknown }).details;
    process.stderr.write(`sandlot ${verbName}: ${typeof details === 'string' && details ? details : errorMessage(e)}\n`);
    return EXIT_FAILURE;
  }
}
