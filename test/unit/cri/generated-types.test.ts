// src/types/cri/ holds the TypeScript types proto-loader-gen-types makes from
// api/cri.proto and api/sandlot.proto, committed so no build step is needed. They must
// match the protos and the options the server decodes with (src/cri/proto.ts): the
// handlers' request types are the decoded shapes (`…__Output`), which is only true
// while both agree. Regenerated into a temp dir here; any difference fails.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { decodedRequest, PROTO_LOADER_OPTIONS } from '../../../src/cri/proto.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

const execFileAsync = promisify(execFile);
const OUT_DIR = 'src/types/cri';
const PROTOS = ['cri.proto', 'sandlot.proto'];

/** The generator's flags, derived from the loader options the server uses. */
function generatorFlags(): string[] {
  const o = PROTO_LOADER_OPTIONS;
  const flags: string[] = [];
  if (o.keepCase) flags.push('--keepCase');
  flags.push(`--longs=${o.longs.name}`, `--enums=${o.enums.name}`);
  if (o.defaults) flags.push('--defaults');
  if (o.oneofs) flags.push('--oneofs');
  // grpc-js service types, ESM import specifiers, the protos' comments as doc comments.
  flags.push('--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '--includeComments', '-I', 'api');
  return flags;
}

function regenerateCommand(outDir: string): string[] {
  return ['node_modules/.bin/proto-loader-gen-types', ...generatorFlags(), '-O', outDir, ...PROTOS];
}

function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else out.set(rel, fs.readFileSync(path.join(root, rel), 'utf8'));
    }
  };
  walk('.');
  return out;
}

test('the committed CRI types equal a fresh proto-loader-gen-types run with the server loader options', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-gen-types-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const [bin = '', ...args] = regenerateCommand(tmp);
  await execFileAsync(path.join(REPO_ROOT, bin), args, { cwd: REPO_ROOT });

  const fresh = tree(tmp);
  const committed = tree(path.join(REPO_ROOT, OUT_DIR));
  const hint = `regenerate with: rm -rf ${OUT_DIR} && ${regenerateCommand(OUT_DIR).join(' ')}`;
  assert.ok(fresh.size > 100, `the generator wrote only ${fresh.size} files`);
  assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), `the set of files differs; ${hint}`);
  const stale = [...fresh].filter(([rel, text]) => committed.get(rel) !== text).map(([rel]) => rel);
  assert.deepEqual(stale, [], `stale generated files; ${hint}`);
});

test('the generated request type of a method is the decoded shape: int64 as string, enums as names, every field present', () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, OUT_DIR, 'runtime/v1/ExecSyncRequest.ts'), 'utf8');
  const output = text.slice(text.indexOf('export interface ExecSyncRequest__Output'));
  assert.match(output, /'container_id': \(string\);/);
  assert.match(output, /'timeout': \(string\);/);
  const ns = fs.readFileSync(path.join(REPO_ROOT, OUT_DIR, 'runtime/v1/NamespaceMode.ts'), 'utf8');
  assert.match(ns, /export type NamespaceMode__Output = typeof NamespaceMode\[keyof typeof NamespaceMode\]/);
});

test('a request decoded by the server definition has the generated __Output shape', () => {
  assert.deepEqual(decodedRequest('ExecSync', { container_id: 'c1', timeout: 5 }), { container_id: 'c1', cmd: [], timeout: '5' });
  const run = decodedRequest('RunPodSandbox', { config: { metadata: { name: 'p' } } });
  assert.equal(run.runtime_handler, '');
  assert.equal(run.config?.linux, null);
  assert.equal(run.config?.metadata?.attempt, 0);
  assert.throws(() => decodedRequest('NoSuchMethod' as 'ExecSync', {}), /NoSuchMethod is no method/);
});
