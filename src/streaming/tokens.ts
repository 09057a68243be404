// Single-use, short-lived tokens that stand for one streaming request (as the kubelet's
// streaming request cache does). A token is a random name with no meaning of its own:
// the request it is bound to lives only here, so a forged token finds nothing, a used
// one is gone, and an expired one is dropped on sight.
import { randomBytes } from 'node:crypto';
import { ResourceExhaustedError } from '../errors.js';
import type { AttachRequest, ExecRequest, PortForwardRequest } from './requests.js';

export const TOKEN_TTL_MS = 60_000;
/** The kubelet's cap; more unconsumed URLs than this means a client is leaking them. */
export const MAX_PENDING_TOKENS = 1000;
const TOKEN_BYTES = 24;

export type BoundRequest =
  { kind: 'exec'; request: ExecRequest } | { kind: 'attach'; request: AttachRequest } | { kind: 'portforward'; request: PortForwardRequest };

interface Entry {
  bound: BoundRequest;
  expiresAt: number;
}

export interface TokenStoreOptions {
  ttlMs?: number;
  now?: () => number;
}

export class TokenStore {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: TokenStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? TOKEN_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  issue(bound: BoundRequest): string {
    this.sweep();
    if (this.entries.size >= MAX_PENDING_TOKENS) {
      throw new ResourceExhaustedError(`issuing streaming token: ${this.entries.size} unused tokens pending, limit ${MAX_PENDING_TOKENS}`);
    }
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    this.entries.set(token, { bound, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** The request bound to `token`, removing it; undefined when unknown, used or expired. */
  consume(token: string): BoundRequest | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    return entry.expiresAt > this.now() ? entry.bound : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(token);
  }
}
