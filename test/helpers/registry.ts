// A real Debian `docker-registry` on 127.0.0.1 for tests: plain, with htpasswd Basic
// auth, or with Bearer token auth backed by a tiny token server of our own that signs
// RS256 JWTs with a throwaway key (its self-signed cert is the registry's root bundle).
// Plus a minimal push client (monolithic upload: POST, then PUT ?digest=).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestBlob, TestImage } from './image-build.js';

export interface TestRegistry {
  host: string;
  url: string;
  /** Authorization header for pushes (admin credentials / a push token). */
  pushAuth: (repo: string) => Promise<string | undefined>;
  /** With `tls`: the self-signed certificate (SAN IP 127.0.0.1) clients must trust. */
  certFile?: string | undefined;
  /** Requests the token server answered (token auth only), oldest first. */
  tokenRequests: TokenRequest[];
  stop(): Promise<void>;
}

export interface TokenRequest {
  method: string;
  /** `refresh_token` for the OAuth2 POST flow; undefined for the GET flow. */
  grantType?: string | undefined;
  /** Who the token was issued to; '' for anonymous or refused requests. */
  sub: string;
  granted: boolean;
}

export interface RegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  username?: string;
  password?: string;
  /** Token auth: OAuth2 refresh tokens (CRI identity_token) accepted, each → the user it stands for. */
  refreshTokens?: Record<string, string>;
  /** Token auth: expires_in of issued tokens, in seconds (default 300). */
  tokenTtlS?: number;
  /**
   * Serve HTTPS with a throwaway self-signed certificate. The push helpers below use
   * fetch and cannot trust it: push with skopeo (--dest-tls-verify=false) instead.
   */
  tls?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface TokenServer {
  realm: string;
  requests: TokenRequest[];
  server: http.Server;
  certFile: string;
  sign(sub: string, scope: string): string;
}

async function startTokenServer(dir: string, users: Record<string, string>, refreshTokens: Record<string, string>, ttlS: number): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=sandlot-test-token'],
    {
      stdio: 'ignore',
    },
  );
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  const certDer = new crypto.X509Certificate(fs.readFileSync(certFile)).raw;
  const sign = (sub: string, scope: string): string => {
    const access = scope
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, name, actions] = s.split(':');
        return { type, name, actions: (actions ?? '').split(',') };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: 'sandlot-test', sub, aud: 'sandlot-registry', exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), key))}`;
  };
  const requests: TokenRequest[] = [];
  // The OAuth2 flow (distribution token spec, "OAuth2 Token Authentication"):
  // POST form grant_type=refresh_token&refresh_token=…&service=…&scope=…&client_id=…
  const oauth = (body: string, res: http.ServerResponse): void => {
    const form = new URLSearchParams(body);
    const grantType = form.get('grant_type') ?? '';
    const sub = grantType === 'refresh_token' ? refreshTokens[form.get('refresh_token') ?? ''] : undefined;
    if (!sub || !form.get('client_id')) {
      requests.push({ method: 'POST', grantType, sub: '', granted: false });
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
      return;
    }
    requests.push({ method: 'POST', grantType, sub, granted: true });
    const scope = form.get('scope') ?? '';
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: sign(sub, scope), expires_in: ttlS, scope }));
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => oauth(body, res));
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers.authorization ?? '';
    let sub = '';
    if (authz.startsWith('Basic ')) {
      const [user, pass] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
      if (user === undefined || users[user] !== pass) {
        requests.push({ method: 'GET', sub: '', granted: false });
        res.writeHead(401).end('{"details":"bad credentials"}');
        return;
      }
      sub = user;
    }
    // Anonymous users get tokens with no access: the registry then answers 401.
    const scope = sub ? (u.searchParams.get('scope') ?? '') : '';
    requests.push({ method: 'GET', sub, granted: sub !== '' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: sign(sub, scope), expires_in: ttlS }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { realm: `http://127.0.0.1:${port}/token`, requests, server, certFile, sign };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-registry-'));
  const port = await freePort();
  const username = opts.username ?? 'tester';
  const password = opts.password ?? 's3cret';
  let authYaml = '';
  let token: TokenServer | undefined;
  if (opts.auth === 'htpasswd') {
    const line = execFileSync('htpasswd', ['-Bbn', username, password]).toString().trim();
    fs.writeFileSync(path.join(dir, 'htpasswd'), `${line}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: sandlot-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (opts.auth === 'token') {
    token = await startTokenServer(dir, { [username]: password }, opts.refreshTokens ?? {}, opts.tokenTtlS ?? 300);
    authYaml = `auth:\n  token:\n    realm: ${token.realm}\n    service: sandlot-registry\n    issuer: sandlot-test\n    rootcertbundle: ${token.certFile}\n`;
  }
  let tlsYaml = '';
  let certFile: string | undefined;
  if (opts.tls) {
    certFile = path.join(dir, 'registry.crt');
    const keyFile = path.join(dir, 'registry.key');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    tlsYaml = `  tls:\n    certificate: ${certFile}\n    key: ${keyFile}\n`;
  }
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(
    configFile,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tlsYaml}${authYaml}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const host = `127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (token) await new Promise((r) => token.server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      // A TLS listener answers plain HTTP with a 400: enough to know it is up.
      await fetch(`http://${host}/v2/`);
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`docker-registry did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const pushAuth = (repo: string): Promise<string | undefined> => {
    if (opts.auth === 'htpasswd') return Promise.resolve(basic);
    if (token) return Promise.resolve(`Bearer ${token.sign(username, `repository:${repo}:pull,push`)}`);
    return Promise.resolve(undefined);
  };
  return { host, url: `${opts.tls ? 'https' : 'http'}://${host}`, certFile, pushAuth, tokenRequests: token?.requests ?? [], stop };
}

async function check(res: Response, what: string): Promise<void> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
}

export async function pushBlob(reg: TestRegistry, repo: string, digest: string, data: Buffer): Promise<void> {
  const auth = await reg.pushAuth(repo);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const head = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers });
  if (head.ok) return;
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  await check(start, `starting upload of ${digest}`);
  const loc = new URL(start.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: data });
  await check(put, `uploading ${digest}`);
}

export async function pushManifest(reg: TestRegistry, repo: string, reference: string, blob: TestBlob): Promise<void> {
  const auth = await reg.pushAuth(repo);
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': blob.mediaType, ...(auth ? { authorization: auth } : {}) },
    body: blob.data,
  });
  await check(res, `pushing manifest ${repo}:${reference}`);
}

/** Pushes blobs and the manifest of `image` as `repo:tag`. */
export async function pushImage(reg: TestRegistry, repo: string, tag: string, image: TestImage): Promise<void> {
  for (const [digest, data] of image.blobs) await pushBlob(reg, repo, digest, data);
  await pushManifest(reg, repo, tag, image.manifest);
}
