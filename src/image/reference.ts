// Image references, normalized the way the kubelet and containerd expect
// (github.com/distribution/reference, ParseNormalizedNamed):
//   busybox                 → docker.io/library/busybox:latest
//   user/app:v1             → docker.io/user/app:v1
//   host:5000/a/b:tag       → host:5000/a/b:tag
//   repo@sha256:<64 hex>    → docker.io/library/repo@sha256:…
//   repo:tag@sha256:<hex>   → both kept; the digest decides what is pulled
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_LENGTH_MAX = 255;

const ALPHANUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUM}(?:${SEPARATOR}${ALPHANUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})(?::[0-9]+)?`;
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

export interface ImageReference {
  /** Registry host[:port], `docker.io` for Docker Hub. */
  readonly domain: string;
  /** Repository path inside the registry, `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  /** `sha256:<hex>` when the reference pins a digest. */
  readonly digest: string | undefined;
}

/** `docker.io/library/busybox` */
export function repoName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalized string: `name[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${repoName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** `name:tag` or undefined when the reference has no tag. */
export function tagReference(ref: ImageReference): string | undefined {
  return ref.tag === undefined ? undefined : `${repoName(ref)}:${ref.tag}`;
}

export function digestReference(ref: ImageReference, digest: string): string {
  return `${repoName(ref)}@${digest}`;
}

/** True for `sha256:<64 hex>`. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** True for a bare 64-hex string, which names an image ID, never a repository. */
export function isHexId(s: string): boolean {
  return HEX64_RE.test(s);
}

function invalid(raw: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`parsing image reference ${JSON.stringify(raw)}: ${why}`);
}

/**
 * Parses and normalizes a reference; a missing tag becomes `latest` unless a digest
 * is given. Throws InvalidArgumentError naming the reference when it is malformed.
 */
export function parseReference(raw: string): ImageReference {
  if (typeof raw !== 'string' || raw === '') throw invalid(String(raw), 'empty reference');
  if (raw !== raw.trim()) throw invalid(raw, 'surrounding whitespace');
  if (isHexId(raw)) throw invalid(raw, 'a 64-character hexadecimal string is an image ID, not a repository');

  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST_RE.test(digest)) throw invalid(raw, `malformed digest ${JSON.stringify(digest)}`);
    if (!DIGEST_RE.test(digest)) throw invalid(raw, `unsupported digest ${JSON.stringify(digest)} (only sha256 with 64 lowercase hex digits)`);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(raw, `malformed tag ${JSON.stringify(tag)}`);
  }

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // The first component is a registry host when it looks like one: a dot, a port,
    // `localhost`, or upper case (which repository paths never have).
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN_RE.test(domain)) throw invalid(raw, `malformed registry host ${JSON.stringify(domain)}`);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path === '') throw invalid(raw, 'empty repository path');
  if (path !== path.toLowerCase()) throw invalid(raw, `repository name ${JSON.stringify(path)} must be lowercase`);
  if (!PATH_RE.test(path)) throw invalid(raw, `malformed repository path ${JSON.stringify(path)}`);
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  if (`${domain}/${path}`.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(raw, `repository name longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { domain, path, tag, digest };
}

/** Normalized string form of `raw` (throws InvalidArgumentError like parseReference). */
export function normalizeReference(raw: string): string {
  return formatReference(parseReference(raw));
}

/** The host the distribution API is spoken to for `domain` (Docker Hub's differs). */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}
