// The `sandlot` command: the daemon, and client verbs for people and tests. Flags are
// parsed by commander: per-verb --help with values and meaning, short forms, typo
// hints for unknown verbs and flags. Global flags (--socket) go before or after the verb.
import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { errorMessage } from '../errors.js';
import { daemonUnreachable } from './unreachable.js';
import { traceVerb } from './verb-trace.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SOCKET_HELP, socketOf, UsageError, type Verb, type VerbOption, type VerbValues } from './verb.js';

const EPILOG = [
  '',
  'Containers and pods are named by ID, unique ID prefix or name (`sandlot run --name web …`, then `sandlot logs web`).',
  'The daemon takes --config FILE and the flags `sandlot daemon --help` lists',
  '(each also as env SANDLOT_<NAME>, e.g. SANDLOT_LOG_LEVEL).',
].join('\n');

function flagsOf(name: string, o: VerbOption): string {
  const short = o.short ? `-${o.short}, ` : '';
  const value = o.type === 'string' ? ` <${o.value ?? 'VALUE'}>` : '';
  return `${short}--${name}${value}`;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/** The values under the flags' own names (`log-root`, not commander's `logRoot`). */
function valuesOf(cmd: Command, verb: Verb, global: Command): VerbValues {
  const out: VerbValues = {};
  for (const opt of cmd.options) {
    const name = opt.long?.replace(/^--/, '');
    if (name === undefined || !(name in verb.options)) continue;
    const v = cmd.getOptionValue(opt.attributeName()) as VerbValues[string];
    if (v !== undefined) out[name] = v;
  }
  // --socket before the verb counts when the verb has none of its own.
  const g = global.opts<{ socket?: string }>().socket;
  if (out.socket === undefined && g !== undefined && 'socket' in verb.options) out.socket = g;
  return out;
}

/**
 * The verbs `argv` may run. `sandlot daemon` loads its own verb alone: the client verbs
 * (terminal, progress bars, streaming clients, tables) would stay in the daemon's heap
 * for its whole life otherwise.
 */
async function verbsFor(argv: string[]): Promise<Verb[]> {
  if (argv[0] === 'daemon') return [(await import('./verbs/daemon.js')).daemonVerb];
  return (await import('./registry.js')).VERBS;
}

interface Outcome {
  code: number;
}

function buildProgram(outcome: Outcome, verbs: Verb[]): Command {
  const usage = new Map(verbs.map((v) => [v.name, v.usage ?? '']));
  const program = new Command('sandlot')
    .description('a Kubernetes CRI runtime: the daemon, and crictl-like verbs for people')
    .usage('[--socket PATH] <verb> [flags] [args]')
    .option('--socket <PATH>', SOCKET_HELP)
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EPILOG)
    .configureHelp({ subcommandTerm: (cmd) => `${cmd.name()}${usage.get(cmd.name()) ? ` ${usage.get(cmd.name())}` : ''}` })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'sandlot: ')),
    });
  for (const verb of verbs) {
    const cmd = program
      .command(verb.name)
      .description(verb.summary)
      .usage(`[flags]${verb.usage ? ` ${verb.usage}` : ''}`)
      .argument('[args...]')
      .allowExcessArguments(true)
      .showSuggestionAfterError(true)
      .exitOverride()
      .configureOutput({
        writeOut: (s) => process.stdout.write(s),
        writeErr: (s) => process.stderr.write(s),
        outputError: (s, write) => write(s.replace(/^error: /, `sandlot ${verb.name}: `)),
      });
    if (verb.endsInCommand) cmd.passThroughOptions();
    for (const [name, o] of Object.entries(verb.options)) {
      const opt = new Option(flagsOf(name, o), o.description);
      if (o.multiple) opt.argParser(collect);
      cmd.addOption(opt);
    }
    cmd.action(async (args: string[]) => {
      const values = valuesOf(cmd, verb, program);
      outcome.code = await runVerb(verb, values, args);
    });
  }
  return program;
}

async function runVerb(verb: Verb, values: VerbValues, args: string[]): Promise<number> {
  try {
    return await traceVerb(verb.name, () => verb.run(values, args));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sandlot ${verb.name}: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`sandlot: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if ('socket' in verb.options && verb.name !== 'daemon') {
      const gone = daemonUnreachable(e, socketOf(values));
      if (gone) {
        process.stderr.write(`sandlot ${verb.name}: ${gone}\n`);
        return EXIT_FAILURE;
      }
    }
    const details = (e as { details?: unknown }).details;
    process.stderr.write(`sandlot ${verb.name}: ${typeof details === 'string' && details ? details : errorMessage(e)}\n`);
    return EXIT_FAILURE;
  }
}

export async function main(argv: string[]): Promise<number> {
  const outcome: Outcome = { code: EXIT_OK };
  const program = buildProgram(outcome, await verbsFor(argv));
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation());
    process.stdout.write(`${EPILOG}\n`);
    return EXIT_USAGE;
  }
  if (argv[0] === 'help' && argv.length === 1) argv = ['--help'];
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version print and succeed; every other parse failure is a usage error.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw e;
  }
  return outcome.code;
}
