// Builds and runs the Go SPDY client (test/helpers/go-spdy-client) — an independent
// peer built on moby/spdystream, as client-go is. Built once per source hash into
// os.tmpdir(), in GOPATH mode against Debian's packaged sources (no network).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SOURCE_DIR = fileURLToPath(new URL('../../helpers/go-spdy-client/', import.meta.url));
const GOPATH_SYSTEM = '/usr/share/gocode';

let built: Promise<string> | undefined;

export function buildGoClient(): Promise<string> {
  built ??= (async () => {
    const src = fs.readFileSync(path.join(SOURCE_DIR, 'main.go'));
    const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
    const dir = path.join(os.tmpdir(), 'sandlot-go-spdy-client');
    const bin = path.join(dir, `spdyclient-${hash}`);
    if (fs.existsSync(bin)) return bin;
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    await promisify(execFile)('go', ['build', '-o', tmp, '.'], {
      cwd: SOURCE_DIR,
      env: { ...process.env, GO111MODULE: 'off', GOPATH: GOPATH_SYSTEM, GOFLAGS: '', GOCACHE: path.join(dir, 'cache') },
    });
    fs.renameSync(tmp, bin);
    return bin;
  })();
  return built;
}

export interface GoClientResult {
  httpStatus: number;
  httpBody?: string;
  protocol: string;
  error?: string;
  errorStream: string;
  stdoutLen: number;
  stdoutSha256: string;
  stdout: string;
  stderr: string;
  forwards?: { data: string; error: string }[];
  headers?: Record<string, string>;
}

/** Runs the client with `--flag=value` args; rejects if it does not finish in time. */
export async function runGoClient(args: Record<string, string | number | boolean>, timeoutMs = 60_000): Promise<GoClientResult> {
  const bin = await buildGoClient();
  const argv = Object.entries(args).map(([k, v]) => `-${k}=${v}`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`go spdy client timed out after ${timeoutMs} ms (${argv.join(' ')}); stderr: ${err}`));
    }, timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as GoClientResult);
      } catch {
        reject(new Error(`go spdy client printed no result (${argv.join(' ')}): ${out} ${err}`));
      }
    });
  });
}

/** The v4+ channel protocols' final message on the error channel (a Kubernetes metav1.Status). */
export interface StreamStatus {
  metadata?: Record<string, unknown>;
  status: 'Success' | 'Failure';
  reason?: string;
  message?: string;
  details?: { causes?: Array<{ reason: string; message: string }> };
}

/** Parses the error channel's text as a Status. */
export function streamStatus(text: string): StreamStatus {
  return JSON.parse(text) as StreamStatus;
}
