// Writes a single-layer OCI image layout directory from a rootfs directory, so an
// image can be imported with no registry (`make build` builds a busybox one that
// `make run` imports). Entries are written in sorted order with fixed owners and
// mtimes, so the same tree always gives the same digests.
//   node --import tsx src/image/oci-layout-writer.ts --busybox OUT_DIR [NAME]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import tar from 'tar-stream';
import { errorMessage, InvalidArgumentError } from '../errors.js';
import { CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION } from './archive-import.js';
import { sha256Digest } from './digest.js';
import { MEDIA_TYPE, hostPlatform, type ImageRuntimeConfig } from './manifest.js';
import { formatReference, parseReference } from './reference.js';

export const BUSYBOX_BINARY = '/bin/busybox';
const EPOCH = new Date(0);

export interface WriteLayoutOptions {
  rootfs: string;
  out: string;
  /** Full reference, e.g. `docker.io/library/busybox:latest`. */
  name: string;
  config?: ImageRuntimeConfig;
}

async function addTree(pack: tar.Pack, root: string, rel: string): Promise<void> {
  const names = (await fsp.readdir(path.join(root, rel))).sort();
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n;
    const p = path.join(root, r);
    const st = await fsp.lstat(p);
    const base = { name: r, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: EPOCH };
    if (st.isDirectory()) {
      pack.entry({ ...base, name: `${r}/`, type: 'directory' });
      await addTree(pack, root, r);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...base, type: 'symlink', linkname: await fsp.readlink(p) });
    } else if (st.isFile()) {
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ ...base, type: 'file', size: st.size }, (err) => (err ? reject(err) : resolve()));
        fs.createReadStream(p).on('error', reject).pipe(sink);
      });
    } else {
      throw new InvalidArgumentError(`writing OCI layout: ${JSON.stringify(p)} is neither a file, a directory nor a symlink`);
    }
  }
}

async function writeBlob(out: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256Digest(data);
  await fsp.writeFile(path.join(out, 'blobs', 'sha256', digest.slice(7)), data);
  return { digest, size: data.length };
}

export async function writeOciLayout(opts: WriteLayoutOptions): Promise<{ manifestDigest: string; configDigest: string }> {
  const ref = parseReference(opts.name);
  await fsp.mkdir(path.join(opts.out, 'blobs', 'sha256'), { recursive: true });
  const pack = tar.pack();
  const diff = crypto.createHash('sha256');
  const tmpLayer = path.join(opts.out, `.layer-${process.pid}.tmp`);
  const gz = zlib.createGzip();
  pack.on('data', (c: unknown) => {
    diff.update(c as Buffer);
  });
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, gz, fs.createWriteStream(tmpLayer));
  await addTree(pack, opts.rootfs, '');
  pack.finalize();
  await writing;
  const layerData = await fsp.readFile(tmpLayer);
  await fsp.rm(tmpLayer);
  const layer = await writeBlob(opts.out, layerData);
  const platform = hostPlatform();
  const config = await writeBlob(
    opts.out,
    Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        config: opts.config ?? { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${diff.digest('hex')}`] },
        history: [{ created_by: 'sandlot oci-layout-writer' }],
      }),
    ),
  );
  const manifest = await writeBlob(
    opts.out,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.OCI_MANIFEST,
        config: { mediaType: MEDIA_TYPE.OCI_CONFIG, ...config },
        layers: [{ mediaType: MEDIA_TYPE.OCI_LAYER_GZIP, ...layer }],
      }),
    ),
  );
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.OCI_INDEX,
    manifests: [
      {
        mediaType: MEDIA_TYPE.OCI_MANIFEST,
        ...manifest,
        platform,
        annotations: { [CONTAINERD_NAME_ANNOTATION]: formatReference(ref), [REF_NAME_ANNOTATION]: ref.tag ?? 'latest' },
      },
    ],
  };
  await fsp.writeFile(path.join(opts.out, 'index.json'), JSON.stringify(index));
  await fsp.writeFile(path.join(opts.out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { manifestDigest: manifest.digest, configDigest: config.digest };
}

/**
 * The applets `busybox` was built with (`busybox --list`), so the built-in image has
 * every one as a command (`uname`, `sed`, `awk` …), as Docker's busybox image does.
 */
export function busyboxApplets(busybox = BUSYBOX_BINARY): string[] {
  let out: string;
  try {
    out = execFileSync(busybox, ['--list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new InvalidArgumentError(`listing the applets of "${busybox}" (busybox --list): ${errorMessage(e)}`, { cause: e });
  }
  // Names only: nothing that could leave bin/ (`[` and `[[` are applets too).
  const applets = out.split('\n').filter((a) => a !== '' && a !== 'busybox' && !a.includes('/') && a !== '.' && a !== '..');
  if (!applets.includes('sh')) throw new InvalidArgumentError(`listing the applets of "${busybox}": no "sh" among ${applets.length} applets; is it busybox?`);
  return applets;
}

/** A minimal busybox rootfs: the static binary and a bin/ symlink for each of its applets. */
export async function makeBusyboxRootfs(dir: string, busybox = BUSYBOX_BINARY): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev']) await fsp.mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
  await fsp.chmod(path.join(dir, 'tmp'), 0o1777);
  await fsp.copyFile(busybox, path.join(dir, 'bin', 'busybox'));
  await fsp.chmod(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of busyboxApplets(busybox)) await fsp.symlink('busybox', path.join(dir, 'bin', applet));
  await fsp.writeFile(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await fsp.writeFile(path.join(dir, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
}

/** Writes the busybox image layout to `out`, named `name`. */
export async function writeBusyboxLayout(out: string, name = 'docker.io/library/busybox:latest'): Promise<void> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'sandlot-busybox-'));
  try {
    await makeBusyboxRootfs(tmp);
    await fsp.rm(out, { recursive: true, force: true });
    await writeOciLayout({ rootfs: tmp, out, name });
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname) && process.argv[2] === '--busybox') {
  const out = process.argv[3];
  if (!out) {
    process.stderr.write('usage: oci-layout-writer.ts --busybox OUT_DIR [NAME]\n');
    process.exit(2);
  }
  await writeBusyboxLayout(out, process.argv[4]);
  process.stdout.write(`wrote busybox OCI layout to ${out}\n`);
}
