// Import of images without a registry: an OCI layout directory, an oci-archive (a tar
// of one) or a docker-archive (`docker save`: manifest.json + config + layer tars).
// Tarballs are extracted (regular files and dirs only, names checked like layer
// entries) into a temp dir inside the image store; the images then go through the
// same verifying pull pipeline as registry pulls.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { InvalidArgumentError, NotFoundError, SandlotError, errnoCode, errorMessage } from '../errors.js';
import { checkDigest, sha256Digest } from './digest.js';
import { FileSource } from './image-source.js';
import { MEDIA_TYPE } from './manifest.js';
import { parseReference, type ImageReference } from './reference.js';
import { entryComponents } from './unpack.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

export interface ImportRoot {
  digest: string;
  size: number;
  names: ImageReference[];
}

export interface ImportPlan {
  source: FileSource;
  roots: ImportRoot[];
  cleanup(): Promise<void>;
}

/** A reference from an annotation, or undefined when it is only a tag (`latest`). */
function nameFromAnnotation(v: string | undefined): ImageReference | undefined {
  if (!v || (!v.includes('/') && !v.includes(':'))) return undefined;
  try {
    return parseReference(v);
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

async function planOciLayout(dir: string, what: string): Promise<Omit<ImportPlan, 'cleanup'>> {
  let index: { manifests?: { digest?: string; size?: number; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as typeof index;
  } catch (e) {
    throw new InvalidArgumentError(`${what}: reading index.json: ${(e as Error).message}`);
  }
  const roots: ImportRoot[] = [];
  if (!Array.isArray(index?.manifests)) throw new InvalidArgumentError(`${what}: index.json has no manifests list`);
  for (const [i, m] of index.manifests.entries()) {
    if (typeof m?.digest !== 'string' || typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size < 0) {
      throw new InvalidArgumentError(`${what}: index.json manifests[${i}] has no valid digest and size`);
    }
    // Checked before it names a file: `sha256:../../../etc/passwd` must not be read.
    checkDigest(m.digest, `${what}: index.json manifests[${i}]`);
    const name = nameFromAnnotation(m.annotations?.[CONTAINERD_NAME_ANNOTATION]) ?? nameFromAnnotation(m.annotations?.[REF_NAME_ANNOTATION]);
    roots.push({ digest: m.digest, size: m.size, names: name ? [name] : [] });
  }
  if (roots.length === 0) throw new InvalidArgumentError(`${what}: index.json lists no manifests`);
  return { source: FileSource.ociLayout(dir), roots };
}

async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const h = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

async function layerMediaType(file: string): Promise<string> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return MEDIA_TYPE.DOCKER_LAYER_GZIP;
    if (head.readUInt32LE(0) === 0xfd2fb528) return MEDIA_TYPE.OCI_LAYER_ZSTD;
    return MEDIA_TYPE.DOCKER_LAYER;
  } finally {
    await fh.close();
  }
}

async function planDockerArchive(dir: string, what: string): Promise<Omit<ImportPlan, 'cleanup'>> {
  let entries: { Config?: string; RepoTags?: string[] | null; Layers?: string[] }[];
  try {
    entries = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as typeof entries;
  } catch (e) {
    throw new InvalidArgumentError(`${what}: reading manifest.json: ${(e as Error).message}`);
  }
  if (!Array.isArray(entries) || entries.length === 0) throw new InvalidArgumentError(`${what}: manifest.json lists no images`);
  const files = new Map<string, string>();
  const inside = (rel: unknown, field: string): string => {
    if (typeof rel !== 'string') throw new InvalidArgumentError(`${what}: manifest.json ${field} is not a string`);
    return path.join(dir, ...entryComponents(rel, what, `manifest.json ${field}`));
  };
  const roots: ImportRoot[] = [];
  for (const [i, e] of entries.entries()) {
    const configFile = inside(e.Config, 'Config');
    const config = await hashFile(configFile);
    files.set(config.digest, configFile);
    const layers = [];
    for (const l of e.Layers ?? []) {
      const file = inside(l, 'Layers');
      const d = await hashFile(file);
      files.set(d.digest, file);
      layers.push({ mediaType: await layerMediaType(file), digest: d.digest, size: d.size });
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.DOCKER_MANIFEST,
        config: { mediaType: MEDIA_TYPE.DOCKER_CONFIG, digest: config.digest, size: config.size },
        layers,
      }),
    );
    const manifestFile = path.join(dir, `.sandlot-manifest-${i}.json`);
    await fsp.writeFile(manifestFile, manifest);
    const digest = sha256Digest(manifest);
    files.set(digest, manifestFile);
    const names = (e.RepoTags ?? []).map((t) => parseReference(t));
    roots.push({ digest, size: manifest.length, names });
  }
  const source = new FileSource(`docker-archive "${what}"`, (d) => {
    const f = files.get(d);
    if (!f) throw new NotFoundError(`${what}: blob ${d} is not in the archive`);
    return f;
  });
  return { source, roots };
}

/** What a file that is not a tar archive is instead, from its first bytes. */
async function sniff(file: string): Promise<string> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    if (bytesRead === 0) return 'an empty file';
    if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip-compressed data (decompress it first)';
    if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd-compressed data (decompress it first)';
    if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2-compressed data (decompress it first)';
    if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz-compressed data (decompress it first)';
    return 'not a tar archive';
  } finally {
    await fh.close();
  }
}

/** Extracts regular files and directories of a tarball into `dest`, refusing escapes. */
async function extractArchive(file: string, dest: string, what: string): Promise<void> {
  try {
    await extractArchiveEntries(file, dest, what);
  } catch (e) {
    if (e instanceof SandlotError || errnoCode(e) !== undefined) throw e;
    // tar-stream's own errors ("Invalid tar header", "Unexpected end of data"): the
    // file is the client's mistake, not ours.
    const kind = await sniff(file);
    const is = kind === 'not a tar archive' ? `not a tar archive (${errorMessage(e)})` : `not a tar archive but ${kind}`;
    throw new InvalidArgumentError(`${what}: file "${file}" is ${is}`);
  }
}

async function extractArchiveEntries(file: string, dest: string, what: string): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(fs.createReadStream(file), extract);
  feeding.catch(() => undefined);
  // A tarball cut short inside an entry can fail that entry before its write starts
  // (see unpack.ts); writes race this so they never wait forever.
  const feedFailed = feeding.then(() => new Promise<never>(() => undefined));
  feedFailed.catch(() => undefined);
  for await (const entry of extract) {
    const h = entry.header;
    const parts = entryComponents(h.name, what);
    if (parts.length > 0 && (h.type === 'file' || h.type === 'directory')) {
      const target = path.join(dest, ...parts);
      if (h.type === 'directory') {
        await fsp.mkdir(target, { recursive: true });
      } else {
        await fsp.mkdir(path.dirname(target), { recursive: true });
        const out = fs.createWriteStream(target, { flags: 'wx' });
        try {
          await Promise.race([pipeline(entry, out), feedFailed]);
        } catch (e) {
          out.destroy();
          throw e;
        }
        continue;
      }
    }
    // Links and devices have no place in an image archive; skip their bodies.
    entry.resume();
  }
  await feeding;
}

/** Works out what `p` is and which images it holds. `tmpDir` must be inside the store. */
export async function planImport(p: string, tmpDir: string): Promise<ImportPlan> {
  const what = `importing "${p}"`;
  let st: fs.Stats;
  try {
    st = await fsp.stat(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what}: no such file or directory`);
    throw e;
  }
  if (st.isDirectory()) {
    if (!(await exists(path.join(p, 'oci-layout')))) throw new InvalidArgumentError(`${what}: directory has no oci-layout file`);
    return { ...(await planOciLayout(p, what)), cleanup: () => Promise.resolve() };
  }
  await fsp.mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const cleanup = async (): Promise<void> => fsp.rm(tmpDir, { recursive: true, force: true });
  try {
    await extractArchive(p, tmpDir, what);
    if (await exists(path.join(tmpDir, 'oci-layout'))) return { ...(await planOciLayout(tmpDir, what)), cleanup };
    if (await exists(path.join(tmpDir, 'manifest.json'))) return { ...(await planDockerArchive(tmpDir, what)), cleanup };
    throw new InvalidArgumentError(`${what}: neither an oci-archive (no oci-layout) nor a docker-archive (no manifest.json)`);
  } catch (e) {
    await cleanup();
    throw e;
  }
}
