// S6 on every handler: who runs each hook stage of a container's spec.
//
//   stage            runc 1.1.5 (measured)                 runsc 2022 (measured)          sandlot
//   prestart         create, host; failure fails create   create, host; same             runtime
//   createRuntime    create, host; failure fails create   create, host; same             runtime
//   createContainer  create, container mount ns           skipped ("not supported")      runtime (runc) / dropped, logged (runsc)
//   startContainer   start, inside the container           skipped                        runtime (runc) / dropped, logged (runsc)
//   poststart        during *create*; a failure kills      start, host; failure ignored   sandlot, after the runtime's start
//                    the container and fails create        silently                       returned; a failure is logged
//   poststop         delete, host; failure on stderr,      delete, host; failure ignored  sandlot, after the runtime's delete;
//                    `delete --force` still exits 0        silently                       logged; once
//
// So the runtime gets the stages of `features.runtimeHookStages`; poststart and poststop
// move from config.json into `sandlot-hooks.json` beside it when the container is
// created, and `withHookStages` runs them around the monitor's start and delete. After a
// failed create the undo's delete runs poststop too, as the runtime-spec's lifecycle
// (and runc itself) does. The spec is split from the object the create was given (no
// re-read of config.json), and a container created without sandlot stages is
// remembered, so its start and delete look for no sandlot-hooks.json (issue 13).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage } from '../errors.js';
import { runOciHook, type HookRunner } from './hook-runner.js';
import { HOOK_STAGES, type HookStage, type OciHook, type OciHooks } from './oci-hooks.js';
import type { OciState, RuntimeFeatures } from './runtime.js';

/** The stages sandlot runs itself on every handler. */
export const SANDLOT_HOOK_STAGES: readonly HookStage[] = ['poststart', 'poststop'];
export const SANDLOT_HOOKS_FILE = 'sandlot-hooks.json';

/** What sandlot keeps for its own stages (`<bundle>/sandlot-hooks.json`). */
export interface SandlotHooksFile {
  version: 1;
  ociVersion: string;
  annotations: Record<string, string>;
  hooks: Pick<OciHooks, 'poststart' | 'poststop'>;
}

/** A spec's hooks split: what the runtime gets, what sandlot runs, what nobody can run here. */
export function splitHookStages(hooks: OciHooks, runtimeStages: readonly HookStage[]): { runtime: OciHooks; sandlot: OciHooks; dropped: HookStage[] } {
  const runtime: OciHooks = {};
  const sandlot: OciHooks = {};
  const dropped: HookStage[] = [];
  for (const stage of HOOK_STAGES) {
    const list = hooks[stage];
    if (list === undefined || list.length === 0) continue;
    if (SANDLOT_HOOK_STAGES.includes(stage)) sandlot[stage] = list;
    else if (runtimeStages.includes(stage)) runtime[stage] = list;
    else dropped.push(stage);
  }
  return { runtime, sandlot, dropped };
}

/** What the hook stages read of a spec. */
export interface HookedSpec {
  ociVersion?: string;
  annotations?: Record<string, string>;
  hooks?: OciHooks;
}

/** The monitor operations the hook stages wrap (structurally the sandbox's ContainerMonitor). */
export interface HookableMonitor {
  /** `spec`: the spec as written to the bundle's config.json (else it is read from there). */
  create(req: { id: string; paths: { bundle: string }; spec?: HookedSpec }): Promise<unknown>;
  start(id: string): Promise<void>;
  delete(id: string): Promise<void>;
  state(id: string): Promise<OciState | undefined>;
}

export interface HookStagesOptions {
  features: Pick<RuntimeFeatures, 'runtimeHookStages'>;
  handler: string;
  bundleOf(id: string): string;
  log: Logger;
  runHook?: HookRunner;
}

/** `inner` with S6's hook stages: the spec split at create, poststart after start, poststop after delete. */
export function withHookStages<M extends HookableMonitor>(inner: M, o: HookStagesOptions): M {
  const run = o.runHook ?? runOciHook;
  // Containers this monitor created without sandlot stages: their start and delete read
  // no sandlot-hooks.json. Any other (a daemon restart forgot it) has the file read.
  const withoutHooks = new Set<string>();
  const hooksOf = async (id: string): Promise<SandlotHooksFile | undefined> => (withoutHooks.has(id) ? undefined : readSandlotHooks(o.bundleOf(id)));
  const wrapped: Pick<HookableMonitor, 'create' | 'start' | 'delete'> = {
    async create(req) {
      withoutHooks.delete(req.id);
      const moved = await moveSandlotStages(req.id, req.paths.bundle, req.spec, o);
      if (!moved) withoutHooks.add(req.id);
      return inner.create(req);
    },
    async start(id) {
      await inner.start(id);
      const file = await hooksOf(id);
      if (file?.hooks.poststart === undefined) return;
      const st = await inner.state(id).catch(() => undefined);
      const state: OciState = {
        ociVersion: file.ociVersion,
        id,
        status: st?.status ?? 'running',
        pid: st?.pid ?? 0,
        bundle: o.bundleOf(id),
        annotations: file.annotations,
      };
      await runBestEffort('poststart', file.hooks.poststart, state, run, o, 'the container runs on');
    },
    async delete(id) {
      await inner.delete(id);
      const file = await hooksOf(id);
      withoutHooks.delete(id);
      if (file === undefined) return;
      const bundle = o.bundleOf(id);
      if (file.hooks.poststop !== undefined) {
        const state = { ociVersion: file.ociVersion, id, status: 'stopped', bundle, annotations: file.annotations } as OciState;
        await runBestEffort('poststop', file.hooks.poststop, state, run, o, 'the removal goes on');
      }
      // Once: a retried delete (a RemoveContainer whose later step failed) runs none again.
      await fs.rm(path.join(bundle, SANDLOT_HOOKS_FILE), { force: true });
    },
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'create' || prop === 'start' || prop === 'delete') return wrapped[prop];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** S6: a poststart or poststop failure is logged, the lifecycle goes on. */
async function runBestEffort(stage: HookStage, hooks: OciHook[], state: OciState, run: HookRunner, o: HookStagesOptions, goesOn: string): Promise<void> {
  for (const [i, hook] of hooks.entries()) {
    try {
      await run(hook, state);
    } catch (e) {
      o.log.warn({ containerId: state.id, handler: o.handler, stage, hook: hook.path, index: i, reason: errorMessage(e) }, `${stage} hook failed; ${goesOn}`);
    }
  }
}

/**
 * At create: sandlot's stages out of config.json into sandlot-hooks.json; stages the
 * runtime cannot run dropped, logged. `given`: the spec as written to config.json (else
 * read from there). True when sandlot-hooks.json was written.
 */
async function moveSandlotStages(id: string, bundle: string, given: HookedSpec | undefined, o: HookStagesOptions): Promise<boolean> {
  const specFile = path.join(bundle, 'config.json');
  const spec = given ?? (await readSpec(specFile));
  if (spec?.hooks === undefined) return false;
  const { runtime, sandlot, dropped } = splitHookStages(spec.hooks, o.features.runtimeHookStages);
  for (const stage of dropped) {
    o.log.warn(
      { containerId: id, handler: o.handler, stage, hooks: spec.hooks[stage]?.map((h) => h.path) },
      `the runtime of handler "${o.handler}" cannot run ${stage} hooks; they are skipped`,
    );
  }
  const moved = Object.keys(sandlot).length > 0;
  // Only stages the runtime runs: config.json holds them already.
  if (!moved && dropped.length === 0) return false;
  if (moved) {
    const file: SandlotHooksFile = { version: 1, ociVersion: spec.ociVersion ?? '1.0.2', annotations: spec.annotations ?? {}, hooks: sandlot };
    await fs.writeFile(path.join(bundle, SANDLOT_HOOKS_FILE), JSON.stringify(file));
  }
  // The caller's object stays as it was: the runtime's part goes to disk only.
  const onDisk: HookedSpec = { ...spec };
  if (Object.keys(runtime).length > 0) onDisk.hooks = runtime;
  else delete onDisk.hooks;
  await fs.writeFile(specFile, JSON.stringify(onDisk, null, 1));
  return moved;
}

/** The bundle's config.json, or undefined for a monitor that writes no bundle (tests' fakes). */
async function readSpec(specFile: string): Promise<HookedSpec | undefined> {
  const text = await fs.readFile(specFile, 'utf8').catch((e: unknown) => {
    if (errnoCode(e) === 'ENOENT') return '';
    throw e;
  });
  if (!text.includes('"hooks"')) return undefined;
  return JSON.parse(text) as HookedSpec;
}

async function readSandlotHooks(bundle: string): Promise<SandlotHooksFile | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(bundle, SANDLOT_HOOKS_FILE), 'utf8')) as SandlotHooksFile;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}
