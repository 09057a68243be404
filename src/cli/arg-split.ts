// Verbs that run a command (`run IMAGE CMD…`, `exec CONTAINER CMD…`) stop reading their
// own flags at the first positional, as docker and crictl do: in `sandlot exec c1 sh -c
// 'echo hi'` the `-c` belongs to sh. The split knows which flags take a value, so
// `--name web busybox` keeps "web" as the value of --name.
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Splits argv into the verb's own part (flags and its first `leadingPositionals`
 * positionals, e.g. 1 for IMAGE or CONTAINER) and the command after them, untouched.
 */
export function splitAtCommand(args: string[], options: Options, leadingPositionals: number): { flags: string[]; command: string[] } {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type === 'string') {
      takesValue.add(`--${name}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  const flags: string[] = [];
  let seen = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      // Everything after "--" is positional: the rest of the leading ones, then the command.
      const rest = args.slice(i + 1);
      const need = leadingPositionals - seen;
      return { flags: [...flags, ...rest.slice(0, need)], command: rest.slice(need) };
    }
    if (a.startsWith('-') && a !== '-') {
      flags.push(a);
      if (takesValue.has(a) && i + 1 < args.length) flags.push(args[++i]!);
      continue;
    }
    if (seen === leadingPositionals) return { flags, command: args.slice(i) };
    flags.push(a);
    seen += 1;
  }
  return { flags, command: [] };
}
