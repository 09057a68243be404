// kill -9 of the daemon with containers running, exiting and half-created; after the
// restart the running one is RUNNING and never interrupted, the one that exited while
// the daemon was down is EXITED with its true exit code and finish time (the exit
// file's), and the half-created one is gone without a trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, containerConfig, makeContainerEnv, podConfig, waitFor } from './container-env.js';

/** PIDs of processes whose command line holds `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

test('kill -9 recovery: running stays running, exited-while-down gets its exit code and time, half-created is cleaned', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const { d } = env;
  const pod = await env.runPod('recover');
  const runner = await env.createContainer(pod, 'runner', { command: ['/bin/sh', '-c', 'while true; do echo alive; sleep 0.2; done'] });
  const exiter = await env.createContainer(pod, 'exiter', { command: ['/bin/sh', '-c', 'sleep 3; exit 5'] });
  for (const id of [runner, exiter]) await d.runtime('StartContainer', { container_id: id });
  await env.waitState(runner, 'CONTAINER_RUNNING');
  const runnerInfo = await env.info(runner);

  // A create interrupted by the kill: fire it, kill the daemon as soon as its metadata
  // says `creating`. A create that outran us is just another container; try again.
  const containersDir = path.join(d.rootDir, 'containers');
  const known = new Set([runner, exiter]);
  let halfMade: string | undefined;
  for (let attempt = 0; attempt < 5 && halfMade === undefined; attempt++) {
    const call = d
      .runtime(
        'CreateContainer',
        {
          pod_sandbox_id: pod,
          config: containerConfig(`half${attempt}`, { command: ['/bin/sh', '-c', 'sleep 3600'] }),
          sandbox_config: podConfig('recover', env.logDir),
        },
        60_000,
      )
      .catch(() => undefined);
    const end = Date.now() + 20_000;
    while (halfMade === undefined && Date.now() < end) {
      for (const id of fs.existsSync(containersDir) ? fs.readdirSync(containersDir) : []) {
        if (known.has(id)) continue;
        const meta = path.join(containersDir, id, 'meta.json');
        const text = fs.existsSync(meta) ? fs.readFileSync(meta, 'utf8') : '';
        if (text.includes('"state": "creating"')) {
          await d.kill9();
          halfMade = id;
          break;
        }
        if (text.includes('"state": "created"')) known.add(id);
      }
      await sleep(1);
    }
    const r = await call;
    if (r?.container_id) {
      const info = await env.info(r.container_id);
      env.pids.push(Number(info.pid), Number(info.conmonPid));
    }
  }
  assert.ok(halfMade !== undefined, 'the daemon was killed half-way through a create');
  assert.ok(alive(Number(runnerInfo.pid)), 'the running container outlives the daemon');

  // While the daemon is down, the exiter ends; conmon writes its exit file.
  const exitFile = path.join(d.stateDir, 'container-exits', exiter);
  await waitFor('the exit file of the exiter', () => fs.existsSync(exitFile), 60_000);
  const mtimeNs = BigInt(Math.round(fs.statSync(exitFile).mtimeMs)) * 1_000_000n;
  await sleep(1100); // so that "now" at the restart is visibly later than the real finish time
  await d.start();

  const r = await env.status(runner);
  assert.equal(r.state, 'CONTAINER_RUNNING');
  assert.equal(Number((await env.info(runner)).pid), Number(runnerInfo.pid), 'the same process, never interrupted');
  const e = await env.status(exiter);
  assert.equal(e.state, 'CONTAINER_EXITED');
  assert.equal(e.exit_code, 5);
  assert.equal(e.reason, 'Error');
  const finished = BigInt(e.finished_at);
  const diff = finished > mtimeNs ? finished - mtimeNs : mtimeNs - finished;
  assert.ok(diff < 5_000_000n, `finished_at is the exit file's mtime (${finished} vs ${mtimeNs})`);

  const list = (await d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: Array<{ id: string }> };
  assert.ok(!list.containers.some((c) => c.id === halfMade), 'the half-created container is not listed');
  assert.ok(!fs.existsSync(path.join(containersDir, halfMade)), 'its metadata and rootfs dir are gone');
  assert.ok(!fs.existsSync(path.join(d.stateDir, 'containers', halfMade)), 'its runtime files are gone');
  assert.ok(!fs.existsSync(path.join(d.stateDir, 'runtimes', 'runc', halfMade)), 'runc no longer knows it');
  assert.deepEqual(processesWith(halfMade), [], 'no monitor or process of it is left');
  assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(halfMade), 'its rootfs is unmounted');

  // The recovered containers still work: stop and remove through the new daemon.
  await d.runtime('StopContainer', { container_id: runner, timeout: 5 }, 60_000);
  assert.equal((await env.status(runner)).state, 'CONTAINER_EXITED');
  for (const id of [runner, exiter]) await d.runtime('RemoveContainer', { container_id: id }, 60_000);
  assert.ok(!alive(Number(runnerInfo.conmonPid)));
});
