// Builds OCI images in memory for tests: layers from entry lists (tar-stream),
// compressed with gzip (zlib), zstd (the `zstd` CLI) or not at all; manifests,
// configs and indexes with correct digests — or deliberately wrong ones.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import tar from 'tar-stream';

export type TestEntry =
  | { type: 'file'; name: string; data: Buffer | string; mode?: number; uid?: number; gid?: number; mtime?: Date; xattrs?: Record<string, string> }
  | { type: 'dir'; name: string; mode?: number; uid?: number; gid?: number; mtime?: Date }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'link'; name: string; target: string }
  | { type: 'char'; name: string; major: number; minor: number; mode?: number }
  | { type: 'fifo'; name: string; mode?: number };

export type TestCompression = 'gzip' | 'zstd' | 'none';

export interface TestBlob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface TestLayer extends TestBlob {
  diffId: string;
}

export interface TestImage {
  manifest: TestBlob;
  config: TestBlob;
  layers: TestLayer[];
  /** Every blob (config + layers) by digest. */
  blobs: Map<string, Buffer>;
}

export const FIXED_MTIME = new Date('2024-01-02T03:04:05Z');

export function sha256(data: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

export function hasZstdCli(): boolean {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function tarOf(entries: TestEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    switch (e.type) {
      case 'file': {
        const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
        const pax = e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined;
        pack.entry(
          { name: e.name, type: 'file', mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? FIXED_MTIME, ...(pax ? { pax } : {}) },
          data,
        );
        break;
      }
      case 'dir':
        pack.entry({ name: e.name, type: 'directory', mode: e.mode ?? 0o755, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? FIXED_MTIME });
        break;
      case 'symlink':
        pack.entry({ name: e.name, type: 'symlink', linkname: e.target, mtime: FIXED_MTIME });
        break;
      case 'link':
        pack.entry({ name: e.name, type: 'link', linkname: e.target, mtime: FIXED_MTIME });
        break;
      case 'char':
        pack.entry({ name: e.name, type: 'character-device', devmajor: e.major, devminor: e.minor, mode: e.mode ?? 0o666, mtime: FIXED_MTIME });
        break;
      case 'fifo':
        pack.entry({ name: e.name, type: 'fifo', mode: e.mode ?? 0o644, mtime: FIXED_MTIME });
        break;
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function compress(data: Buffer, c: TestCompression): Buffer {
  if (c === 'gzip') return zlib.gzipSync(data);
  if (c === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  return data;
}

const LAYER_MEDIA: Record<TestCompression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

export async function buildLayer(entries: TestEntry[], c: TestCompression = 'gzip'): Promise<TestLayer> {
  const raw = await tarOf(entries);
  return layerFromTar(raw, c);
}

export function layerFromTar(raw: Buffer, c: TestCompression = 'gzip'): TestLayer {
  const data = compress(raw, c);
  return { mediaType: LAYER_MEDIA[c], digest: sha256(data), size: data.length, data, diffId: sha256(raw) };
}

export function blobOf(mediaType: string, json: unknown): TestBlob {
  const data = Buffer.from(JSON.stringify(json));
  return { mediaType, digest: sha256(data), size: data.length, data };
}

export interface BuildImageOptions {
  architecture?: string;
  config?: Record<string, unknown>;
  /** Replace layer descriptors' sizes (to make a manifest lie). */
  layerSizes?: (number | undefined)[];
  /** Docker schema 2 instead of OCI. */
  docker?: boolean;
}

export function buildImage(layers: TestLayer[], opts: BuildImageOptions = {}): TestImage {
  const config = blobOf(opts.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', {
    architecture: opts.architecture ?? 'amd64',
    os: 'linux',
    config: opts.config ?? { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const manifest = blobOf(opts.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: opts.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l, i) => ({
      mediaType: opts.docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : l.mediaType,
      digest: l.digest,
      size: opts.layerSizes?.[i] ?? l.size,
    })),
  });
  const blobs = new Map<string, Buffer>([[config.digest, config.data]]);
  for (const l of layers) blobs.set(l.digest, l.data);
  return { manifest, config, layers, blobs };
}

export function buildIndex(images: { image: TestImage; architecture: string }[]): TestBlob {
  return blobOf('application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map(({ image, architecture }) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      platform: { os: 'linux', architecture },
    })),
  });
}

/** A busybox-static rootfs layer: /bin/busybox plus /bin/sh → busybox. */
export async function busyboxLayer(c: TestCompression = 'gzip'): Promise<TestLayer> {
  return buildLayer(
    [
      { type: 'dir', name: 'bin/' },
      { type: 'file', name: 'bin/busybox', data: fs.readFileSync('/bin/busybox'), mode: 0o755 },
      { type: 'symlink', name: 'bin/sh', target: 'busybox' },
      { type: 'dir', name: 'etc/' },
      { type: 'file', name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
    ],
    c,
  );
}
