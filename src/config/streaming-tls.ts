// Who can reach the streaming server and the metrics endpoint (issue 11 item 10).
//
// A streaming URL's token is a bearer token: whoever holds it within its minute gets the
// exec (as root, in the container). So the server listens on loopback by default, and an
// operator who must expose it can require TLS with a client certificate signed by a CA
// of their choosing — the kubelet's streaming proxy presents one. Without a client CA,
// TLS only encrypts: the URL alone still opens the door.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError } from './config-error.js';
import type { SandlotConfig } from './types.js';

export type StreamingTlsKeys = Pick<SandlotConfig, 'streaming_tls_cert_file' | 'streaming_tls_key_file' | 'streaming_tls_client_ca_file'>;

/** PEM material the streaming server is started with. */
export interface StreamingTlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Set: a client must present a certificate this CA signed, or the handshake fails. */
  clientCa?: Buffer;
}

/** "" or an absolute path to a readable regular file. */
function pemFile(key: string, v: unknown): string {
  if (v === undefined || v === '') return '';
  if (typeof v !== 'string') throw new ConfigError(key, v, 'a string is required');
  if (!path.isAbsolute(v) || v.split('/').includes('..')) throw new ConfigError(key, v, 'an absolute path without ".." is required');
  let st: fs.Stats;
  try {
    st = fs.statSync(v);
    fs.accessSync(v, fs.constants.R_OK);
  } catch (e) {
    throw new ConfigError(key, v, `the file must exist and be readable (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!st.isFile()) throw new ConfigError(key, v, 'a regular file (PEM) is required');
  return path.normalize(v);
}

export function validateStreamingTls(raw: Record<string, unknown>): StreamingTlsKeys {
  const cert = pemFile('streaming_tls_cert_file', raw.streaming_tls_cert_file);
  const key = pemFile('streaming_tls_key_file', raw.streaming_tls_key_file);
  const ca = pemFile('streaming_tls_client_ca_file', raw.streaming_tls_client_ca_file);
  if (cert === '' && key !== '') {
    throw new ConfigError('streaming_tls_cert_file', cert, 'streaming_tls_key_file is set: the certificate file is required with it');
  }
  if (key === '' && cert !== '') {
    throw new ConfigError('streaming_tls_key_file', key, 'streaming_tls_cert_file is set: the private key file is required with it');
  }
  if (ca !== '' && cert === '') {
    throw new ConfigError('streaming_tls_client_ca_file', ca, 'client certificates need TLS: set streaming_tls_cert_file and streaming_tls_key_file too');
  }
  return { streaming_tls_cert_file: cert, streaming_tls_key_file: key, streaming_tls_client_ca_file: ca };
}

/** Reads the configured PEM files; undefined when TLS is off. Errors name the key. */
export function loadStreamingTls(config: StreamingTlsKeys): StreamingTlsMaterial | undefined {
  if (config.streaming_tls_cert_file === '') return undefined;
  const read = (key: keyof StreamingTlsKeys): Buffer => {
    try {
      return fs.readFileSync(config[key]);
    } catch (e) {
      throw new ConfigError(key, config[key], `reading the file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  return {
    cert: read('streaming_tls_cert_file'),
    key: read('streaming_tls_key_file'),
    ...(config.streaming_tls_client_ca_file !== '' ? { clientCa: read('streaming_tls_client_ca_file') } : {}),
  };
}

/** True for localhost, 127.0.0.0/8, ::1 and ::ffff:127.x. A wildcard (0.0.0.0, ::) or any other host is not. */
export function isLoopbackAddress(hostPort: string): boolean {
  const host = hostPort
    .slice(0, hostPort.lastIndexOf(':'))
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}

/** One warning per endpoint configured to listen beyond loopback, saying what guards it. */
export function exposureWarnings(
  config: Pick<SandlotConfig, 'streaming_address' | 'metrics_address'> & StreamingTlsKeys,
): Array<{ key: string; address: string; msg: string }> {
  const out: Array<{ key: string; address: string; msg: string }> = [];
  if (!isLoopbackAddress(config.streaming_address)) {
    const guard =
      config.streaming_tls_client_ca_file !== ''
        ? 'clients must present a certificate signed by streaming_tls_client_ca_file'
        : 'no client certificate is required (set streaming_tls_client_ca_file): anyone who can reach it and holds a URL gets an exec as root within the token lifetime';
    out.push({ key: 'streaming_address', address: config.streaming_address, msg: `the streaming server listens beyond loopback; ${guard}` });
  }
  if (config.metrics_address !== '' && !isLoopbackAddress(config.metrics_address)) {
    out.push({
      key: 'metrics_address',
      address: config.metrics_address,
      msg: 'the metrics endpoint listens beyond loopback without authentication: anyone who can reach it reads pod names and usage',
    });
  }
  return out;
}
