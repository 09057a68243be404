// Digests and chain IDs (OCI image spec, "Layer ChainID"):
//   ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))
import crypto from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

const SHA256_DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/**
 * Returns `digest` when it is `sha256:<64 lowercase hex>`, else throws
 * INVALID_ARGUMENT naming `what`. Every digest is checked by this before it names a
 * file or a URL path (`sha256:../../etc/passwd` must never reach path.join).
 */
export function checkDigest(digest: unknown, what: string): string {
  if (typeof digest !== 'string' || !SHA256_DIGEST_RE.test(digest)) {
    throw new InvalidArgumentError(`${what}: digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex>`);
  }
  return digest;
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of `sha256:<hex>`. */
export function digestHex(digest: string): string {
  return checkDigest(digest, 'digest').slice('sha256:'.length);
}

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256Digest(`${prev} ${d}`));
  }
  return out;
}
