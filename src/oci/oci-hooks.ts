// OCI hook definitions as CRI-O's `hooks_dir` reads them: the `oci-hooks` JSON schema
// 1.0.0 (containers/common pkg/hooks, oci-hooks(5)). A file names one hook (`hook`:
// path, args, env, timeout), when it applies (`when`: always, annotations, commands,
// hasBindMounts; every condition that is set must match) and the stages it runs at.
// Pure: parsing and matching only; hooks-dirs.ts reads the directories, hook-stages.ts
// decides who runs each stage (S6).
import path from 'node:path';

/** The OCI runtime-spec hook stages, in lifecycle order. */
export const HOOK_STAGES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookStage = (typeof HOOK_STAGES)[number];

/** An OCI runtime-spec hook (config.json `hooks.<stage>[]`). */
export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds. */
  timeout?: number;
}

export type OciHooks = Partial<Record<HookStage, OciHook[]>>;

export interface HookWhen {
  always?: boolean;
  /** Key regex → value regex, matched against the container's annotations. */
  annotations?: Record<string, string>;
  /** Regexes over the container's command path (process.args[0]). */
  commands?: string[];
  hasBindMounts?: boolean;
}

/** One parsed hook file. */
export interface HookDefinition {
  /** The file's name (the key by which a later directory overrides an earlier one). */
  name: string;
  file: string;
  hook: OciHook;
  when: HookWhen;
  stages: HookStage[];
}

/** What `when` is matched against. */
export interface HookMatchFacts {
  annotations: Record<string, string>;
  /** process.args[0]. */
  command: string | undefined;
  /** The container has bind mounts (volumes) of its own. */
  hasBindMounts: boolean;
}

/** A hook file that cannot be used; `reason` says why (the file is skipped and logged). */
export class HookFileError extends Error {
  override readonly name = 'HookFileError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function compile(pattern: string, field: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (e) {
    throw new HookFileError(`${field}: ${JSON.stringify(pattern)} is no regular expression: ${(e as Error).message}`);
  }
}

function parseHook(v: unknown): OciHook {
  if (!isObject(v)) throw new HookFileError('hook: an object is required');
  if (typeof v.path !== 'string' || !path.posix.isAbsolute(v.path)) throw new HookFileError(`hook.path: ${JSON.stringify(v.path)} is not an absolute path`);
  const hook: OciHook = { path: v.path };
  if (v.args !== undefined) {
    if (!isStringList(v.args)) throw new HookFileError('hook.args: a list of strings is required');
    hook.args = v.args;
  }
  if (v.env !== undefined) {
    if (!isStringList(v.env)) throw new HookFileError('hook.env: a list of strings is required');
    hook.env = v.env;
  }
  if (v.timeout !== undefined) {
    if (typeof v.timeout !== 'number' || !Number.isInteger(v.timeout) || v.timeout <= 0) {
      throw new HookFileError(`hook.timeout: ${JSON.stringify(v.timeout)} is not a positive whole number of seconds`);
    }
    hook.timeout = v.timeout;
  }
  return hook;
}

function parseWhen(v: unknown): HookWhen {
  if (!isObject(v)) throw new HookFileError('when: an object is required');
  const when: HookWhen = {};
  for (const k of ['always', 'hasBindMounts'] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== 'boolean') throw new HookFileError(`when.${k}: true or false is required`);
    when[k] = v[k];
  }
  if (v.annotations !== undefined) {
    if (!isObject(v.annotations) || !Object.values(v.annotations).every((x) => typeof x === 'string')) {
      throw new HookFileError('when.annotations: a map of key regex to value regex is required');
    }
    for (const [k, val] of Object.entries(v.annotations as Record<string, string>)) {
      compile(k, 'when.annotations key');
      compile(val, `when.annotations[${JSON.stringify(k)}]`);
    }
    when.annotations = v.annotations as Record<string, string>;
  }
  if (v.commands !== undefined) {
    if (!isStringList(v.commands)) throw new HookFileError('when.commands: a list of regexes is required');
    v.commands.forEach((c, i) => compile(c, `when.commands[${i}]`));
    when.commands = v.commands;
  }
  if (when.always === undefined && when.hasBindMounts === undefined && when.annotations === undefined && when.commands === undefined) {
    throw new HookFileError('when: at least one of always, annotations, commands or hasBindMounts must be set');
  }
  return when;
}

/** Parses one hook file's text (schema 1.0.0); a HookFileError says what is wrong. */
export function parseHookFile(text: string, file: string): HookDefinition {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new HookFileError(`parsing JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new HookFileError('the file must hold a JSON object');
  if (doc.version !== '1.0.0') throw new HookFileError(`version: ${JSON.stringify(doc.version)} is not supported (only "1.0.0")`);
  const hook = parseHook(doc.hook);
  const when = parseWhen(doc.when);
  if (!isStringList(doc.stages) || doc.stages.length === 0) throw new HookFileError('stages: a non-empty list of stage names is required');
  const stages = doc.stages.map((s) => {
    if (!(HOOK_STAGES as readonly string[]).includes(s))
      throw new HookFileError(`stages: unknown stage ${JSON.stringify(s)} (known: ${HOOK_STAGES.join(', ')})`);
    return s as HookStage;
  });
  return { name: path.basename(file), file, hook, when, stages: [...new Set(stages)] };
}

/**
 * Does `when` match? As the 1.0.0 schema (containers/common `When.Match`): every
 * condition that is set must hold. `always: false` and `hasBindMounts: false` never
 * hold; each annotation pair needs one annotation whose key and value match; commands
 * need one regex matching the command path. Regexes are unanchored, as Go's MatchString.
 */
export function whenMatches(when: HookWhen, facts: HookMatchFacts): boolean {
  if (when.always !== undefined && !when.always) return false;
  if (when.hasBindMounts !== undefined && !(when.hasBindMounts && facts.hasBindMounts)) return false;
  for (const [keyPattern, valuePattern] of Object.entries(when.annotations ?? {})) {
    const k = new RegExp(keyPattern);
    const v = new RegExp(valuePattern);
    if (!Object.entries(facts.annotations).some(([key, value]) => k.test(key) && v.test(value))) return false;
  }
  if (when.commands !== undefined && when.commands.length > 0) {
    const command = facts.command;
    if (command === undefined || !when.commands.some((c) => new RegExp(c).test(command))) return false;
  }
  return true;
}

/** The hooks of the matching definitions, per stage, in the definitions' order. */
export function matchingHooks(defs: readonly HookDefinition[], facts: HookMatchFacts): OciHooks {
  const out: OciHooks = {};
  for (const def of defs) {
    if (!whenMatches(def.when, facts)) continue;
    for (const stage of def.stages) (out[stage] ??= []).push({ ...def.hook });
  }
  return out;
}

/** `extra`'s hooks appended to `into`'s, stage by stage. */
export function mergeHooks(into: OciHooks, extra: OciHooks): OciHooks {
  const out: OciHooks = { ...into };
  for (const stage of HOOK_STAGES) {
    const add = extra[stage];
    if (add !== undefined && add.length > 0) out[stage] = [...(out[stage] ?? []), ...add];
  }
  return out;
}
