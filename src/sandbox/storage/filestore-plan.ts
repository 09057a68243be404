// Filestores (S15): where the upper layer of the overlay over each gofer-backed mount
// of a runsc container lives, and the lifecycle of the *self* filestore files.
//
// S15: self = a named file `.gvisor.filestore.<sandboxID>` inside the mount source
// (created exclusively, so a second non-shared user of one source fails clearly;
// reused when the mount is shared; a source that is not a directory falls back to
// memory); anon = an unnamed file in a given directory; memory; or none (read-only
// mounts and read-only roots). Destroying a container removes its self filestores
// except those of shared mounts; destroying the root removes the shared ones too (a
// missing file is fine then). After a crash, leftovers of dead sandboxes are removed.
//
// The overlay setting uses runsc's `--overlay2` syntax, `{root|all}:{medium}` or
// `none`. The Debian runsc (2022) knows `memory` and `<dir>` (an anon filestore in an
// existing directory); newer runsc adds `self` and spells the directory `dir=<dir>`.
// Plans and formatting cover all of them; formatOverlayFlag says what the installed
// runsc can take.

import { open, readdir, unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage, FailedPreconditionError, InvalidArgumentError, wrapError } from '../../errors.js';

export const FILESTORE_PREFIX = '.gvisor.filestore.';
const ID_PATTERN = /^[\w+.-]+$/; // S2

export type OverlayScope = 'root' | 'all';
export type OverlayMedium = { kind: 'none' } | { kind: 'memory' } | { kind: 'self' } | { kind: 'anon'; dir: string };
export interface OverlaySetting {
  scope: OverlayScope;
  medium: OverlayMedium;
}

export const OVERLAY_NONE: OverlaySetting = { scope: 'root', medium: { kind: 'none' } };

/**
 * Parses a handler's overlay setting: `none`, or `root|all` `:` `memory | self |
 * anon:<dir> | dir=<dir> | <dir>` (the last two are upstream's and Debian's spellings
 * of anon). The directory must be absolute.
 */
export function parseOverlaySetting(value: string): OverlaySetting {
  const v = value.trim();
  if (v === 'none' || v === '') return OVERLAY_NONE;
  const colon = v.indexOf(':');
  const scope = colon === -1 ? v : v.slice(0, colon);
  const medium = colon === -1 ? '' : v.slice(colon + 1);
  const bad = (why: string): InvalidArgumentError => new InvalidArgumentError(`parsing overlay setting ${JSON.stringify(value)}: ${why}`);
  if (scope !== 'root' && scope !== 'all') throw bad(`mount must be "root" or "all", not ${JSON.stringify(scope)}`);
  if (medium === 'memory') return { scope, medium: { kind: 'memory' } };
  if (medium === 'self') return { scope, medium: { kind: 'self' } };
  if (medium === 'none') return OVERLAY_NONE;
  let dir: string | undefined;
  if (medium.startsWith('anon:')) dir = medium.slice('anon:'.length);
  else if (medium.startsWith('dir=')) dir = medium.slice('dir='.length);
  else if (medium.startsWith('/')) dir = medium;
  if (dir === undefined) throw bad(`medium must be memory, self, anon:<dir> or none, not ${JSON.stringify(medium)}`);
  if (!isAbsolute(dir) || normalize(dir).split('/').includes('..')) throw bad(`directory ${JSON.stringify(dir)} is not absolute`);
  return { scope, medium: { kind: 'anon', dir: normalize(dir) } };
}

export interface RunscOverlayFeatures {
  /** Whether the runsc knows the `self` medium (the Debian 2022 build does not). */
  self: boolean;
  /** Whether it spells a directory `dir=<dir>` (newer) rather than `<dir>` (Debian 2022). */
  dirEquals: boolean;
}

/** The `--overlay2` value for a runsc with the given features; `self` unsupported falls back to memory. */
export function formatOverlayFlag(setting: OverlaySetting, features: RunscOverlayFeatures): string {
  const m = setting.medium;
  switch (m.kind) {
    case 'none':
      return 'none';
    case 'memory':
      return `${setting.scope}:memory`;
    case 'self':
      return `${setting.scope}:${features.self ? 'self' : 'memory'}`;
    case 'anon':
      return `${setting.scope}:${features.dirEquals ? `dir=${m.dir}` : m.dir}`;
  }
}

export interface PlanRoot {
  path: string;
  readonly: boolean;
  /** A root that is an image file rather than a directory cannot hold a self filestore. */
  isDirectory?: boolean;
}

export interface PlanMount {
  source: string;
  destination: string;
  readonly: boolean;
  sourceIsDirectory: boolean;
  /** Set when a pod mount hint (S14) describes this source. */
  hint?: { shared: boolean } | undefined;
}

export interface FilestorePlanInput {
  sandboxId: string;
  overlay: OverlaySetting;
  root: PlanRoot;
  /** The container's gofer-backed (bind) mounts; tmpfs, proc … are not overlaid. */
  mounts: readonly PlanMount[];
}

export type FilestoreMediumKind = OverlayMedium['kind'];

export interface FilestorePlanEntry {
  /** Root path or mount source. */
  source: string;
  /** '/' for the root. */
  destination: string;
  medium: FilestoreMediumKind;
  /** For self: `<source>/.gvisor.filestore.<sandboxID>`. */
  filestorePath?: string;
  /** For anon: the directory the unnamed file goes into. */
  anonDir?: string;
  shared: boolean;
  /** True when self was asked but the source is not a directory (S15 → memory). */
  fellBackToMemory: boolean;
}

export interface FilestorePlan {
  root: FilestorePlanEntry;
  mounts: FilestorePlanEntry[];
}

/** The path of a self filestore in `source` for `sandboxId` (S15). */
export function selfFilestorePath(source: string, sandboxId: string): string {
  if (!ID_PATTERN.test(sandboxId)) {
    throw new InvalidArgumentError(`naming filestore: sandbox id ${JSON.stringify(sandboxId)} does not match ${ID_PATTERN}`);
  }
  return join(source, `${FILESTORE_PREFIX}${sandboxId}`);
}

/** S15 as a pure function: the overlay medium of the root and of each bind mount. */
export function planFilestores(input: FilestorePlanInput): FilestorePlan {
  const configured = input.overlay.medium;
  // S15: a read-only root gets none.
  const rootMedium: OverlayMedium = input.root.readonly ? { kind: 'none' } : configured;
  const root = entry(input.sandboxId, input.root.path, '/', rootMedium, input.root.isDirectory ?? true, false);
  const mounts = input.mounts.map((m) => {
    let medium: OverlayMedium = input.overlay.scope === 'all' ? configured : { kind: 'none' };
    // S15: read-only mounts get none.
    if (m.readonly) medium = { kind: 'none' };
    // S14 + S15: a hinted mount is always self, even read-only and even with overlays
    // off, so that the sandbox's one master mount is set up the same way whichever
    // container mounts it first (a later one may mount it writable).
    if (m.hint !== undefined) medium = { kind: 'self' };
    return entry(input.sandboxId, m.source, m.destination, medium, m.sourceIsDirectory, m.hint?.shared ?? false);
  });
  return { root, mounts };
}

function entry(sandboxId: string, source: string, destination: string, medium: OverlayMedium, isDirectory: boolean, shared: boolean): FilestorePlanEntry {
  const base = { source, destination, shared, fellBackToMemory: false };
  switch (medium.kind) {
    case 'self':
      // S15: a source that is not a directory cannot hold the file → memory.
      if (!isDirectory) return { ...base, medium: 'memory', fellBackToMemory: true };
      return { ...base, medium: 'self', filestorePath: selfFilestorePath(source, sandboxId) };
    case 'anon':
      return { ...base, medium: 'anon', anonDir: medium.dir };
    default:
      return { ...base, medium: medium.kind };
  }
}

/** The file operations FilestoreManager needs. */
export interface FilestoreFs {
  /** O_CREAT|O_EXCL (exclusive) or O_CREAT (reuse); rejects with code EEXIST when exclusive and present. */
  create(path: string, exclusive: boolean): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
}

export const NODE_FILESTORE_FS: FilestoreFs = {
  async create(path, exclusive) {
    const handle = await open(path, exclusive ? 'wx' : 'a', 0o666);
    await handle.close();
  },
  unlink: (path) => unlink(path),
  readdir: (dir) => readdir(dir),
};

export interface FilestoreManagerOptions {
  logger: Logger;
  fs?: FilestoreFs;
}

/** The lifecycle of self filestore files (S15). */
export class FilestoreManager {
  private readonly logger: Logger;
  private readonly fs: FilestoreFs;

  constructor(options: FilestoreManagerOptions) {
    this.logger = options.logger;
    this.fs = options.fs ?? NODE_FILESTORE_FS;
  }

  /**
   * Creates the self filestores of a plan: exclusively unless shared. If one fails the
   * files made so far are removed before the error is thrown (S5). Returns the paths
   * this call created (a reused shared file is not among them).
   */
  async create(sandboxId: string, plan: FilestorePlan): Promise<string[]> {
    const created: string[] = [];
    try {
      for (const e of [plan.root, ...plan.mounts]) {
        if (e.medium !== 'self' || e.filestorePath === undefined) continue;
        try {
          // Shared mounts reuse a file an earlier container of the pod created.
          await this.fs.create(e.filestorePath, !e.shared);
        } catch (err: unknown) {
          if (errnoCode(err) === 'EEXIST') {
            throw new FailedPreconditionError(
              `creating filestore for mount source "${e.source}": "${e.filestorePath}" already exists: ` +
                `another container of sandbox "${sandboxId}" mounts the same source; repeated non-shared mounts ` +
                `cannot use self overlays (declare a pod mount hint with share=pod)`,
              { cause: err },
            );
          }
          throw wrapError(`creating filestore "${e.filestorePath}"`, err);
        }
        if (!e.shared) created.push(e.filestorePath);
      }
    } catch (err: unknown) {
      for (const path of created) {
        await this.fs.unlink(path).catch((e: unknown) => {
          this.logger.warn({ podSandboxId: sandboxId, err: e, path }, 'removing filestore after failed create');
        });
      }
      throw err;
    }
    if (created.length > 0) this.logger.debug({ podSandboxId: sandboxId, paths: created }, 'created self filestores');
    return created;
  }

  /**
   * S15, container destroy: removes its self filestores except those of shared mounts.
   * Idempotent (S7): a file already gone is fine. Every failure is collected.
   */
  async removeForContainer(sandboxId: string, plan: FilestorePlan): Promise<void> {
    const paths = [plan.root, ...plan.mounts]
      .filter((e) => e.medium === 'self' && !e.shared && e.filestorePath !== undefined)
      .map((e) => e.filestorePath as string);
    await this.removeAll(sandboxId, paths, 'removing filestores');
  }

  /** S15, root destroy: removes the shared filestores of the pod's shared hint sources (missing is fine). */
  async removeShared(sandboxId: string, sharedSources: Iterable<string>): Promise<void> {
    const paths = [...sharedSources].map((s) => selfFilestorePath(s, sandboxId));
    await this.removeAll(sandboxId, paths, 'removing shared filestores');
  }

  /**
   * Recovery after a crash: removes `.gvisor.filestore.<id>` files in `sources` whose
   * sandbox is not alive. Returns the removed paths; an unreadable source is skipped
   * with a warning (it may be gone with its pod).
   */
  async cleanupLeftovers(aliveSandboxIds: Iterable<string>, sources: Iterable<string>): Promise<string[]> {
    const alive = new Set(aliveSandboxIds);
    const removed: string[] = [];
    const errors: Error[] = [];
    for (const source of new Set(sources)) {
      let names: string[];
      try {
        names = await this.fs.readdir(source);
      } catch (e: unknown) {
        const code = errnoCode(e);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') {
          this.logger.warn({ err: e, source }, 'listing mount source for leftover filestores');
        }
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(FILESTORE_PREFIX)) continue;
        const id = name.slice(FILESTORE_PREFIX.length);
        if (alive.has(id)) continue;
        const path = join(source, name);
        try {
          await this.fs.unlink(path);
          removed.push(path);
        } catch (e: unknown) {
          if (errnoCode(e) !== 'ENOENT') errors.push(wrapError(`removing leftover filestore "${path}"`, e));
        }
      }
    }
    if (removed.length > 0) this.logger.info({ paths: removed }, 'removed leftover filestores');
    if (errors.length > 0) {
      throw new AggregateError(errors, `cleaning up leftover filestores: ${errors.map(errorMessage).join('; ')}`);
    }
    return removed;
  }

  private async removeAll(sandboxId: string, paths: string[], what: string): Promise<void> {
    const errors: Error[] = [];
    for (const path of paths) {
      try {
        await this.fs.unlink(path);
      } catch (e: unknown) {
        if (errnoCode(e) === 'ENOENT') continue;
        errors.push(wrapError(`removing filestore "${path}"`, e));
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `${what} of sandbox "${sandboxId}": ${errors.map(errorMessage).join('; ')}`);
    }
  }
}
