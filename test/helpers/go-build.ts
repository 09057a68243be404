// Builds a test's Go program with Debian's golang-go in GOPATH mode (no module
// download), once per source content: the binary is cached under the OS temp dir.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GOPATH_SYSTEM = '/usr/share/gocode';

export function buildGo(sourceDir: string, name: string): string {
  const files = fs
    .readdirSync(sourceDir)
    .filter((f) => f.endsWith('.go'))
    .sort();
  const hash = crypto.createHash('sha256');
  for (const f of files) hash.update(f).update(fs.readFileSync(path.join(sourceDir, f)));
  const digest = hash.digest('hex').slice(0, 16);
  const cacheDir = path.join(os.tmpdir(), 'sandlot-go-cache');
  const out = path.join(cacheDir, `${name}-${digest}`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('go', ['build', '-o', tmp, ...files], {
    cwd: sourceDir,
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH: GOPATH_SYSTEM,
      GOCACHE: path.join(cacheDir, 'gocache'),
      GOFLAGS: '',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  fs.renameSync(tmp, out);
  return out;
}
