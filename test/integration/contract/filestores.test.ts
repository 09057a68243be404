// S15 filestores on real files: the self filestore lifecycle (exclusive create, shared
// reuse, removal per container and per pod, fallback to memory, leftovers after a
// crash), and a runsc pod whose handler asks for `all:self`, which the installed runsc
// (no `self`) runs as `all:memory` with no filestore file in any source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import { FailedPreconditionError } from '../../../src/errors.js';
import { containerFilestorePlan, PodFilestores, runscOverlayConfig } from '../../../src/sandbox/storage/pod-mounts-filestores.js';
import { parseMountHints } from '../../../src/sandbox/storage/mount-hints.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { makeContainerEnv } from '../container/container-env.js';

const log = pino({ level: 'silent' });
const POD_A = 'a'.repeat(64);
const POD_B = 'b'.repeat(64);

function tmp(t: { after(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-filestore-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('S15: self filestores on real files: exclusive unless shared, container destroy keeps shared ones, root destroy removes them, non-directories fall back to memory', async (t) => {
  const dir = tmp(t);
  const privateSrc = path.join(dir, 'private');
  const sharedSrc = path.join(dir, 'shared');
  const fileSrc = path.join(dir, 'file.txt');
  fs.mkdirSync(privateSrc);
  fs.mkdirSync(sharedSrc);
  fs.writeFileSync(fileSrc, 'x');
  const hints = parseMountHints({
    'dev.gvisor.spec.mount.vol.source': sharedSrc,
    'dev.gvisor.spec.mount.vol.type': 'bind',
    'dev.gvisor.spec.mount.vol.share': 'pod',
  });
  const stores = new PodFilestores({ log, features: { self: true, dirEquals: true } });
  const plan = (mounts: Array<{ host_path: string; container_path: string; readonly?: boolean }>, readonlyRootfs = false) =>
    containerFilestorePlan({ podId: POD_A, overlay: 'all:self', hints, rootfs: path.join(dir, 'rootfs'), readonlyRootfs, mounts });

  // A read-only root gets none; a file source falls back to memory; the rest are self.
  const p1 = plan(
    [
      { host_path: privateSrc, container_path: '/p' },
      { host_path: sharedSrc, container_path: '/s' },
      { host_path: fileSrc, container_path: '/f' },
    ],
    true,
  );
  assert.equal(p1.root.medium, 'none');
  assert.deepEqual(
    p1.mounts.map((m) => [m.medium, m.shared, m.fellBackToMemory]),
    [
      ['self', false, false],
      ['self', true, false],
      ['memory', false, true],
    ],
  );
  const created = await stores.create(POD_A, p1);
  const privFile = path.join(privateSrc, `.gvisor.filestore.${POD_A}`);
  const sharedFile = path.join(sharedSrc, `.gvisor.filestore.${POD_A}`);
  assert.deepEqual(created, [privFile], "the shared file is not the container's own");
  assert.ok(fs.existsSync(privFile) && fs.existsSync(sharedFile));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['file.txt', 'private', 'shared'], 'nothing next to the file source');

  // A second non-shared user of the same source fails clearly and leaves nothing new.
  const p2 = plan(
    [
      { host_path: sharedSrc, container_path: '/s' },
      { host_path: privateSrc, container_path: '/p2' },
    ],
    true,
  );
  await assert.rejects(stores.create(POD_A, p2), (e: unknown) => e instanceof FailedPreconditionError && /already exists/.test((e as Error).message));
  // A shared user reuses the file.
  const p3 = plan([{ host_path: sharedSrc, container_path: '/s' }], true);
  assert.deepEqual(await stores.create(POD_A, p3), []);

  // Container destroy: its own go, the shared stays.
  await stores.removeForContainer(POD_A, p1);
  assert.ok(!fs.existsSync(privFile));
  assert.ok(fs.existsSync(sharedFile));
  await stores.removeForContainer(POD_A, p1); // idempotent (S7)
  // Root destroy: the shared ones go; again is fine.
  await stores.removeForPod(POD_A, hints);
  assert.ok(!fs.existsSync(sharedFile));
  await stores.removeForPod(POD_A, hints);
});

test('S15: leftovers of pods no longer known are removed at recovery; known pods keep theirs', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(path.join(dir, `.gvisor.filestore.${POD_A}`), '');
  fs.writeFileSync(path.join(dir, `.gvisor.filestore.${POD_B}`), '');
  fs.writeFileSync(path.join(dir, 'data.txt'), 'keep');
  const stores = new PodFilestores({ log });
  const removed = await stores.cleanupLeftovers([POD_A], [dir, path.join(dir, 'missing')]);
  assert.deepEqual(removed, [path.join(dir, `.gvisor.filestore.${POD_B}`)]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`.gvisor.filestore.${POD_A}`, 'data.txt']);
});

test(
  'S15: a runsc handler asking for all:self runs with all:memory on this runsc, and no filestore file appears in a hinted source',
  { timeout: 300_000 },
  async (t) => {
    const base = defaultConfig().runtimes;
    assert.equal(runscOverlayConfig({ ...base.runsc, overlay: 'all:self' }).overlay, 'all:memory');
    assert.equal(runscOverlayConfig({ ...base.runsc, overlay: 'root:anon:/var/tmp' }).overlay, 'root:/var/tmp');
    const source = tmp(t);
    const env = await makeContainerEnv(t);
    // The handler's overlay setting, then a restart to read it.
    env.d.config.runtimes = { runc: base.runc, runsc: { ...base.runsc, overlay: 'all:self' } };
    fs.writeFileSync(env.d.configPath, YAML.stringify(env.d.config));
    await env.d.restart();
    const pod = await env.runPod(
      'gvisor-overlay',
      {
        annotations: {
          'dev.gvisor.spec.mount.vol.source': source,
          'dev.gvisor.spec.mount.vol.type': 'bind',
          'dev.gvisor.spec.mount.vol.share': 'pod',
        },
      },
      'runsc',
    );
    const id = await env.createContainer(pod, 'writer', {
      command: ['/bin/sh', '-c', 'echo in-root > /root-file && cat /root-file && echo v > /vol/seen'],
      mounts: [{ container_path: '/vol', host_path: source }],
    });
    await env.d.runtime('StartContainer', { container_id: id }, 120_000);
    const st = await env.waitState(id, 'CONTAINER_EXITED', 120_000);
    assert.equal(st.exit_code, 0, fs.readFileSync(st.log_path, 'utf8'));
    assert.match(fs.readFileSync(st.log_path, 'utf8'), /stdout F in-root/);
    // The overlay keeps writes in the sandbox's memory: neither the rootfs upper dir nor
    // the volume source sees them, and no filestore file was made.
    const upper = path.join(env.d.rootDir, 'containers', id, 'overlay', 'upper');
    assert.ok(!fs.existsSync(path.join(upper, 'root-file')), 'the root write stayed in memory');
    assert.deepEqual(fs.readdirSync(source), [], 'no write and no .gvisor.filestore file in the source');
    const spec = JSON.parse(fs.readFileSync(path.join(env.d.stateDir, 'containers', id, 'bundle', 'config.json'), 'utf8')) as {
      annotations: Record<string, string>;
    };
    assert.equal(spec.annotations['dev.gvisor.spec.mount.vol.source'], source, 'the hint travels on the container spec');
  },
);
