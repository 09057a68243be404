// Registry credentials and WWW-Authenticate challenges (RFC 7235; the distribution
// token spec: https://distribution.github.io/distribution/spec/auth/token/).
import crypto from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** The CRI AuthConfig fields (snake_case as on the wire). */
export interface CriAuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

export interface RegistryCredentials {
  username?: string | undefined;
  password?: string | undefined;
  /** An OAuth2 refresh token, exchanged at the token endpoint. */
  identityToken?: string | undefined;
  /** A bearer token used as is. */
  registryToken?: string | undefined;
}

/**
 * Turns a CRI AuthConfig into credentials; `auth` is base64("user:password") as in
 * Docker's config.json. Empty configs give undefined (anonymous).
 */
export function credentialsFromAuthConfig(auth: CriAuthConfig | undefined | null): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const c: RegistryCredentials = {};
  if (auth.username) c.username = auth.username;
  if (auth.password) c.password = auth.password;
  if (auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidArgumentError('decoding auth.auth: expected base64 of "username:password"');
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  }
  if (auth.identity_token) c.identityToken = auth.identity_token;
  if (auth.registry_token) c.registryToken = auth.registry_token;
  return Object.keys(c).length === 0 ? undefined : c;
}

/**
 * Who a set of credentials stands for, as a key: equal credentials (however the CRI
 * AuthConfig spelled them) give equal keys, anonymous gives 'anonymous'. A hash, so
 * that secrets do not sit in map keys or show in a heap dump's strings.
 */
export function credentialIdentity(creds: RegistryCredentials | undefined): string {
  if (!creds) return 'anonymous';
  const canonical = JSON.stringify([creds.username ?? null, creds.password ?? null, creds.identityToken ?? null, creds.registryToken ?? null]);
  return crypto.createHash('sha256').update(canonical).digest('hex');
}

export function basicAuthHeader(creds: RegistryCredentials): string | undefined {
  if (creds.username === undefined && creds.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${creds.username ?? ''}:${creds.password ?? ''}`).toString('base64')}`;
}

export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses `Bearer realm="https://auth",service="registry",scope="repository:a:pull"`.
 * Several challenges may share one header, separated by commas before a new scheme.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)|\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
  let cur: AuthChallenge | undefined;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m || m[0] === '') break;
    pos = re.lastIndex;
    if (m[2] !== undefined) {
      if (cur) cur.params[m[2].toLowerCase()] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[4] ?? '');
    } else if (m[1] !== undefined) {
      cur = { scheme: m[1].toLowerCase(), params: {} };
      out.push(cur);
    }
    while (header[pos] === ',' || header[pos] === ' ') pos++;
  }
  return out;
}
