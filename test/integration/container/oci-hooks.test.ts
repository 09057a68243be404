// S6 through the daemon on runc and runsc: OCI hooks from a `hooks_dirs` directory the
// test writes (small sh scripts that record their stage and the state JSON on stdin)
// run at their stages; a failing prestart hook fails CreateContainer with its output
// and leaves nothing; failing poststart/poststop hooks are logged and the lifecycle
// goes on; a malformed hook file is skipped with a logged reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileAsync, failure, makeContainerEnv, waitFor, type ContainerEnv } from './container-env.js';

interface HookDir {
  hooks: string;
  out: string;
}

/**
 * A hooks dir: a recording hook per stage (when annotation test.sandlot/hooks=record), failing hooks per stage, one malformed file.
 * The recording hook writes its file whole (temp + rename): a test polling for it never reads it half written.
 */
function writeHooks(root: string, stages: string[]): HookDir {
  const hooks = path.join(root, 'hooks.d');
  const out = path.join(root, 'out');
  fs.mkdirSync(hooks, { recursive: true });
  fs.mkdirSync(out, { recursive: true });
  const record = path.join(root, 'record.sh');
  fs.writeFileSync(
    record,
    '#!/bin/sh\nstate=$(cat)\nid=$(echo "$state" | sed -n \'s/.*"id":"\\([^"]*\\)".*/\\1/p\')\necho "$state" > "$2/$1.$id.json.tmp"\nmv "$2/$1.$id.json.tmp" "$2/$1.$id.json"\necho "$1" >> "$2/order.$id"\n',
    { mode: 0o755 },
  );
  const fail = path.join(root, 'fail.sh');
  fs.writeFileSync(fail, '#!/bin/sh\ncat >/dev/null\necho "$1 hook refuses: boom" >&2\nexit 3\n', { mode: 0o755 });
  for (const stage of stages) {
    const def = {
      version: '1.0.0',
      hook: { path: record, args: ['record.sh', stage, out] },
      when: { annotations: { '^test\\.sandlot/hooks$': '^record$' } },
      stages: [stage],
    };
    fs.writeFileSync(path.join(hooks, `10-record-${stage}.json`), JSON.stringify(def));
    const bad = {
      version: '1.0.0',
      hook: { path: fail, args: ['fail.sh', stage] },
      when: { annotations: { '^test\\.sandlot/hooks$': `^fail-${stage}$` } },
      stages: [stage],
    };
    fs.writeFileSync(path.join(hooks, `20-fail-${stage}.json`), JSON.stringify(bad));
  }
  fs.writeFileSync(path.join(hooks, '00-malformed.json'), JSON.stringify({ version: '1.0.0', hook: { path: record }, stages: ['prestart'] }));
  return { hooks, out };
}

async function hooksEnv(t: { after(fn: () => void | Promise<void>): void }, stages: string[]): Promise<{ env: ContainerEnv; dir: HookDir }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hooks-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = writeHooks(root, stages);
  const env = await makeContainerEnv(t, { config: { hooks_dirs: [path.join(root, 'absent.d'), dir.hooks] } });
  return { env, dir };
}

function recorded(
  dir: HookDir,
  stage: string,
  id: string,
): { id: string; status: string; pid?: number; bundle: string; annotations?: Record<string, string> } | undefined {
  const f = path.join(dir.out, `${stage}.${id}.json`);
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as never) : undefined;
}

function order(dir: HookDir, id: string): string[] {
  const f = path.join(dir.out, `order.${id}`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n') : [];
}

/** Names of the runtime's containers (the handler's --root under the daemon's state dir). */
async function runtimeContainers(env: ContainerEnv, handler: string): Promise<string[]> {
  const root = path.join(env.d.stateDir, 'runtimes', handler);
  const { stdout } = await execFileAsync(handler, ['--root', root, 'list', '--format', 'json']);
  return ((JSON.parse(stdout.trim() || 'null') as Array<{ id: string }> | null) ?? []).map((c) => c.id);
}

const HANDLERS: Array<{ handler: string; stages: string[]; atCreate: string[] }> = [
  // runc runs createContainer in the container's mount namespace before pivot_root, where the host path is still seen.
  {
    handler: 'runc',
    stages: ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop'],
    atCreate: ['prestart', 'createRuntime', 'createContainer'],
  },
  // runsc skips createContainer/startContainer (measured); sandlot drops them with a warning.
  { handler: 'runsc', stages: ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop'], atCreate: ['prestart', 'createRuntime'] },
];

for (const h of HANDLERS) {
  test(
    `${h.handler}: S6 hooks from hooks_dirs run at their stages with the state on stdin; a malformed hook file is skipped and logged`,
    { timeout: 300_000 },
    async (t) => {
      const { env, dir } = await hooksEnv(t, h.stages);
      const pod = await env.runPod(`hooks-${h.handler}`, {}, h.handler);
      const id = await env.createContainer(pod, 'hooked', { command: ['/bin/sh', '-c', 'sleep 3600'], annotations: { 'test.sandlot/hooks': 'record' } });
      assert.deepEqual(order(dir, id), h.atCreate, 'the create stages ran at CreateContainer, in order');
      const pre = recorded(dir, 'prestart', id)!;
      // runc 1.1.5 says "creating" (the runtime-spec's state during create), runsc "created".
      assert.match(pre.status, /^creat(ing|ed)$/);
      assert.ok((pre.pid ?? 0) > 0, 'prestart sees the pid');
      assert.equal(pre.annotations?.['test.sandlot/hooks'], 'record');
      assert.ok(fs.existsSync(path.join(pre.bundle, 'config.json')), 'the state names the bundle');

      await env.d.runtime('StartContainer', { container_id: id }, 120_000);
      assert.deepEqual(order(dir, id), [...h.atCreate, 'poststart'], 'poststart ran before StartContainer returned');
      assert.equal(recorded(dir, 'poststart', id)!.status, 'running');

      await env.d.runtime('StopContainer', { container_id: id, timeout: 0 }, 120_000);
      // The runtime delete (and so poststop) follows the recorded exit, before any RemoveContainer (issue 13).
      await waitFor('poststop to run after the delete that follows the exit', () => recorded(dir, 'poststop', id) !== undefined, 60_000);
      await env.d.runtime('RemoveContainer', { container_id: id }, 120_000);
      assert.deepEqual(order(dir, id), [...h.atCreate, 'poststart', 'poststop']);
      assert.equal(recorded(dir, 'poststop', id)!.status, 'stopped');

      // A container the hooks do not match gets none.
      const plain = await env.createContainer(pod, 'plain', { command: ['/bin/sh', '-c', 'exit 0'] });
      assert.deepEqual(order(dir, plain), []);
      await waitFor(
        'the malformed hook file to be logged',
        () => /skipping an unusable OCI hook file/.test(env.d.stderr) && env.d.stderr.includes('00-malformed.json'),
      );
      assert.match(env.d.stderr, /"reason":"when: an object is required"/);
      if (!h.atCreate.includes('createContainer')) assert.match(env.d.stderr, /cannot run createContainer hooks; they are skipped/);
    },
  );

  test(`${h.handler}: S6 a failing prestart hook fails CreateContainer with its output and leaves nothing`, { timeout: 300_000 }, async (t) => {
    const { env } = await hooksEnv(t, ['prestart']);
    const pod = await env.runPod(`hookfail-${h.handler}`, {}, h.handler);
    const containerDirs = (): string[] =>
      fs.existsSync(path.join(env.d.stateDir, 'containers')) ? fs.readdirSync(path.join(env.d.stateDir, 'containers')) : [];
    const before = { runtime: await runtimeContainers(env, h.handler), dirs: containerDirs() };
    // S12: <cgroup_root>/<default_cgroup_parent>/pod-<id> (memory hierarchy).
    const podCgroup = path.join('/sys/fs/cgroup/memory', String(env.d.config.cgroup_root), String(env.d.config.default_cgroup_parent), `pod-${pod}`);
    const childCgroups = (): string[] => fs.readdirSync(podCgroup).filter((e) => fs.statSync(path.join(podCgroup, e)).isDirectory());
    const cgroupsBefore = childCgroups();
    const err = await failure(
      env.d.runtime(
        'CreateContainer',
        { pod_sandbox_id: pod, config: containerCfg('refused', { 'test.sandlot/hooks': 'fail-prestart' }), sandbox_config: {} },
        120_000,
      ),
    );
    assert.notEqual(err.code, 0);
    assert.match(err.details, /prestart hook refuses: boom/);
    console.log(`${h.handler}: CreateContainer failed with code ${err.code}: ${err.details}`);
    const list = (await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: unknown[] };
    assert.deepEqual(list.containers, [], 'no container record');
    assert.deepEqual(await runtimeContainers(env, h.handler), before.runtime, 'no runtime state');
    assert.deepEqual(containerDirs(), before.dirs, 'no container files');
    assert.deepEqual(childCgroups(), cgroupsBefore, 'no container cgroup');
  });

  test(`${h.handler}: S6 failing poststart and poststop hooks are logged; the container runs and is removed`, { timeout: 300_000 }, async (t) => {
    const { env } = await hooksEnv(t, ['poststart', 'poststop']);
    const pod = await env.runPod(`hookpost-${h.handler}`, {}, h.handler);
    const a = await env.createContainer(pod, 'poststart', {
      command: ['/bin/sh', '-c', 'sleep 3600'],
      annotations: { 'test.sandlot/hooks': 'fail-poststart' },
    });
    await env.d.runtime('StartContainer', { container_id: a }, 120_000);
    assert.equal((await env.status(a)).state, 'CONTAINER_RUNNING');
    await waitFor(
      'the poststart failure in the log',
      () => /poststart hook failed; the container runs on/.test(env.d.stderr) && /poststart hook refuses: boom/.test(env.d.stderr),
    );
    const b = await env.createContainer(pod, 'poststop', { command: ['/bin/sh', '-c', 'sleep 3600'], annotations: { 'test.sandlot/hooks': 'fail-poststop' } });
    await env.d.runtime('StartContainer', { container_id: b }, 120_000);
    await env.d.runtime('RemoveContainer', { container_id: b }, 120_000);
    await waitFor(
      'the poststop failure in the log',
      () => /poststop hook failed; the removal goes on/.test(env.d.stderr) && /poststop hook refuses: boom/.test(env.d.stderr),
    );
    const list = (await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: Array<{ id: string }> };
    assert.deepEqual(
      list.containers.map((c) => c.id),
      [a],
    );
  });
}

function containerCfg(name: string, annotations: Record<string, string>): Record<string, unknown> {
  return { metadata: { name, attempt: 0 }, image: { image: 'docker.io/library/busybox:latest' }, command: ['/bin/sh', '-c', 'sleep 3600'], annotations };
}
