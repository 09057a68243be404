// The CDI specs of the configured `cdi_spec_dirs` (default /etc/cdi, /var/run/cdi), read
// when a container asks for CDI devices: every *.json / *.yaml / *.yml file, parsed
// again only when its inode, size or mtime changed. As the CDI library: a device of a
// later directory overrides the same name from an earlier one; two specs of the same
// directory defining one name conflict, and neither resolves. A spec that does not
// parse resolves nothing; asking for a device of its kind names it and why.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage, InvalidArgumentError } from '../errors.js';
import { ParsedFileCache } from '../util/parsed-file-cache.js';
import { parseCdiSpec, parseQualifiedName, type CdiDevice, type CdiSpec } from './cdi-spec.js';

export interface CdiRegistryOptions {
  dirs: readonly string[];
  log: Logger;
}

/** A resolved device: the device and the spec it came from. */
export interface CdiResolved {
  qualifiedName: string;
  spec: CdiSpec;
  device: CdiDevice;
}

interface Snapshot {
  /** Per qualified name, the definitions of the latest directory defining it (more than one: a conflict). */
  devices: Map<string, { dir: number; defs: Array<{ spec: CdiSpec; device: CdiDevice }> }>;
  broken: Array<{ file: string; error: string }>;
}

const SPEC_FILE_RE = /\.(json|ya?ml)$/;

export class CdiRegistry {
  private readonly files = new ParsedFileCache<CdiSpec>(async (file) => parseCdiSpec(await fs.readFile(file, 'utf8'), file));

  constructor(private readonly options: CdiRegistryOptions) {}

  /** Resolves every name, in order; INVALID_ARGUMENT naming the first one that is malformed or unknown. */
  async resolve(requests: ReadonlyArray<{ name: string; field: string }>): Promise<CdiResolved[]> {
    for (const r of requests) {
      if (parseQualifiedName(r.name) === undefined) {
        throw new InvalidArgumentError(`${r.field}: ${JSON.stringify(r.name)} is not a qualified CDI device name (vendor.com/class=name)`);
      }
    }
    if (requests.length === 0) return [];
    const snap = await this.snapshot();
    return requests.map((r) => {
      const hit = snap.devices.get(r.name);
      if (hit !== undefined && hit.defs.length === 1) return { qualifiedName: r.name, ...hit.defs[0] };
      if (hit !== undefined) {
        throw new InvalidArgumentError(
          `${r.field}: CDI device "${r.name}" is defined by more than one spec (${hit.defs.map((d) => `"${d.spec.file}"`).join(', ')})`,
        );
      }
      // A spec that does not parse might have been the one: name it and why.
      const why = snap.broken.map((b) => `; unusable spec "${b.file}": ${b.error}`).join('');
      throw new InvalidArgumentError(
        `${r.field}: unknown CDI device "${r.name}": no CDI spec in ${this.options.dirs.map((d) => `"${d}"`).join(', ')} defines it${why}`,
      );
    });
  }

  private async snapshot(): Promise<Snapshot> {
    const snap: Snapshot = { devices: new Map(), broken: [] };
    const seen = new Set<string>();
    for (const [dirIndex, dir] of this.options.dirs.entries()) {
      for (const file of await specFiles(dir, this.options.log)) {
        seen.add(file);
        const got = await this.files.get(file);
        if (got === undefined) continue;
        if (!got.parsed.ok) {
          const error = errorMessage(got.parsed.error);
          if (got.fresh) this.options.log.warn({ file, reason: error }, 'skipping an unusable CDI spec');
          snap.broken.push({ file, error });
          continue;
        }
        const spec = got.parsed.value;
        for (const device of spec.devices) {
          const qualified = `${spec.kind}=${device.name}`;
          const prev = snap.devices.get(qualified);
          if (prev?.dir === dirIndex) prev.defs.push({ spec, device });
          else snap.devices.set(qualified, { dir: dirIndex, defs: [{ spec, device }] });
        }
      }
    }
    this.files.prune(seen);
    return snap;
  }
}

async function specFiles(dir: string, log: Logger): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => !e.isDirectory() && SPEC_FILE_RE.test(e.name))
      .map((e) => path.join(dir, e.name))
      .sort();
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') log.warn({ dir, err: e }, 'reading a CDI spec directory');
    return [];
  }
}
