// OCI / Docker manifest formats: parsing, validation and platform selection.
// Everything here is pure: bytes in, typed values or InvalidArgumentError out.
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import { isDigest } from './reference.js';

export const MEDIA_TYPE = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_NONDIST: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDIST_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDIST_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN_GZIP: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a manifest GET asks for; schema 1 is listed so we can reject it by name. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.OCI_INDEX,
  MEDIA_TYPE.DOCKER_LIST,
  MEDIA_TYPE.OCI_MANIFEST,
  MEDIA_TYPE.DOCKER_MANIFEST,
  MEDIA_TYPE.DOCKER_SCHEMA1_SIGNED,
  MEDIA_TYPE.DOCKER_SCHEMA1,
].join(', ');

export const MANIFEST_SIZE_MAX_BYTES = 4 * 1024 * 1024;
export const CONFIG_SIZE_MAX_BYTES = 8 * 1024 * 1024;

export type Compression = 'none' | 'gzip' | 'zstd';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string | undefined;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform | undefined;
  annotations?: Record<string, string> | undefined;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export type ParsedManifest = ImageIndex | ImageManifest;

/** The `config` section of an image config blob (the runtime defaults of the image). */
export interface ImageRuntimeConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, unknown> | null;
  Volumes?: Record<string, unknown> | null;
}

export interface ImageConfigFile {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config: ImageRuntimeConfig;
  rootfs: { type: string; diff_ids: string[] };
}

function bad(what: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`parsing ${what}: ${why}`);
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw bad(what, `invalid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, 'not a JSON object');
  return v as Record<string, unknown>;
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw bad(what, 'descriptor is not an object');
  const d = v as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw bad(what, `descriptor digest ${JSON.stringify(d.digest)} is not sha256:<64 hex>`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw bad(what, `descriptor ${d.digest} has invalid size ${JSON.stringify(d.size)}`);
  }
  const desc: Descriptor = { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  if (typeof d.platform === 'object' && d.platform !== null) {
    const p = d.platform as Record<string, unknown>;
    desc.platform = {
      architecture: textField(p.architecture, ''),
      os: textField(p.os, ''),
      variant: typeof p.variant === 'string' ? p.variant : undefined,
    };
  }
  if (typeof d.annotations === 'object' && d.annotations !== null) {
    desc.annotations = d.annotations as Record<string, string>;
  }
  return desc;
}

/**
 * Parses a manifest or index. `contentType` is the registry's Content-Type (may be
 * empty); the document's own mediaType wins when present.
 */
/** A JSON field as text: strings as they are, absent as `dflt`, anything else as its JSON. */
function textField(v: unknown, dflt: string): string {
  if (v === undefined || v === null) return dflt;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function parseManifest(bytes: Buffer, contentType: string, what: string): ParsedManifest {
  const doc = parseJson(bytes, what);
  const mediaType = typeof doc.mediaType === 'string' && doc.mediaType !== '' ? doc.mediaType : contentType.split(';')[0].trim();
  if (doc.schemaVersion === 1 || mediaType === MEDIA_TYPE.DOCKER_SCHEMA1 || mediaType === MEDIA_TYPE.DOCKER_SCHEMA1_SIGNED) {
    throw new UnimplementedError(
      `parsing ${what}: Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client (schema 2 or OCI)`,
    );
  }
  if (doc.schemaVersion !== 2) throw bad(what, `unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  const isIndex = mediaType === MEDIA_TYPE.OCI_INDEX || mediaType === MEDIA_TYPE.DOCKER_LIST || (mediaType === '' && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw bad(what, 'index has no manifests array');
    return {
      kind: 'index',
      mediaType: mediaType || MEDIA_TYPE.OCI_INDEX,
      manifests: doc.manifests.map((m) => parseDescriptor(m, what)),
    };
  }
  if (mediaType === MEDIA_TYPE.OCI_MANIFEST || mediaType === MEDIA_TYPE.DOCKER_MANIFEST || mediaType === '') {
    if (!Array.isArray(doc.layers)) throw bad(what, 'manifest has no layers array');
    const config = parseDescriptor(doc.config, what);
    return {
      kind: 'manifest',
      mediaType: mediaType || MEDIA_TYPE.OCI_MANIFEST,
      config,
      layers: doc.layers.map((l) => parseDescriptor(l, what)),
    };
  }
  throw bad(what, `unsupported media type ${JSON.stringify(mediaType)}`);
}

/** How a layer blob is compressed, from its media type. */
export function layerCompression(mediaType: string): Compression {
  switch (mediaType) {
    case MEDIA_TYPE.OCI_LAYER:
    case MEDIA_TYPE.OCI_LAYER_NONDIST:
    case MEDIA_TYPE.DOCKER_LAYER:
      return 'none';
    case MEDIA_TYPE.OCI_LAYER_GZIP:
    case MEDIA_TYPE.OCI_LAYER_NONDIST_GZIP:
    case MEDIA_TYPE.DOCKER_LAYER_GZIP:
    case MEDIA_TYPE.DOCKER_LAYER_FOREIGN_GZIP:
      return 'gzip';
    case MEDIA_TYPE.OCI_LAYER_ZSTD:
    case MEDIA_TYPE.OCI_LAYER_NONDIST_ZSTD:
      return 'zstd';
    default:
      throw new UnimplementedError(`unpacking layer: unsupported layer media type ${JSON.stringify(mediaType)}`);
  }
}

/** Node's process.arch → the OCI/GOARCH name. */
export function hostPlatform(arch: string = process.arch): Platform {
  const map: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[arch] ?? { os: 'linux', architecture: arch };
}

function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Picks the manifest for `want` from an index: os and architecture must match; an
 * exact variant beats a missing one (arm64 images often omit `v8`).
 */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter(
    (m) =>
      m.platform !== undefined &&
      m.platform.os === want.os &&
      m.platform.architecture === want.architecture &&
      (m.mediaType === '' || m.mediaType === MEDIA_TYPE.OCI_MANIFEST || m.mediaType === MEDIA_TYPE.DOCKER_MANIFEST),
  );
  const exact = candidates.find((m) => (m.platform!.variant ?? '') === (want.variant ?? ''));
  const chosen = exact ?? candidates.find((m) => !m.platform!.variant) ?? candidates[0];
  if (chosen === undefined) {
    const have = index.manifests.map((m) => (m.platform ? platformString(m.platform) : 'unknown')).join(', ');
    throw new InvalidArgumentError(`${what}: no manifest for platform ${platformString(want)} (index has: ${have || 'none'})`);
  }
  return chosen;
}

/** Parses and checks an image config blob against its manifest. */
export function parseImageConfig(bytes: Buffer, manifest: ImageManifest, what: string): ImageConfigFile {
  const doc = parseJson(bytes, what);
  const rootfs = doc.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw bad(what, 'config has no rootfs.diff_ids');
  const diffIds = rootfs.diff_ids as unknown[];
  for (const d of diffIds) {
    if (typeof d !== 'string' || !isDigest(d)) throw bad(what, `diff_id ${JSON.stringify(d)} is not sha256:<64 hex>`);
  }
  if (diffIds.length !== manifest.layers.length) {
    throw bad(what, `config lists ${diffIds.length} diff_ids but the manifest has ${manifest.layers.length} layers`);
  }
  const cfg = (typeof doc.config === 'object' && doc.config !== null ? doc.config : {}) as ImageRuntimeConfig;
  const out: ImageConfigFile = {
    architecture: textField(doc.architecture, ''),
    os: textField(doc.os, ''),
    config: cfg,
    rootfs: { type: textField(rootfs.type, 'layers'), diff_ids: diffIds as string[] },
  };
  if (typeof doc.variant === 'string') out.variant = doc.variant;
  if (typeof doc.created === 'string') out.created = doc.created;
  return out;
}
