// Issue 11, item 9, structurally (no timing, no RSS figure): after pods and containers
// are removed, what the daemon keeps per pod returns to its baseline: the per-pod and
// per-container metric series of the next scrape, the CRI call histogram's label set
// (method × code, never an ID), the lists, and the per-object directories on disk.
// Both handlers. The figures of the same under load come from bench/read-under-load.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';

async function scrape(env: ContainerEnv): Promise<string[]> {
  return (await (await fetch(`http://${env.d.metricsAddress}/metrics`)).text()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

const perObject = (lines: string[], prefix: string) => lines.filter((l) => /^sandlot_(container|pod)_/.test(l) && l.includes(`pod="${prefix}`));

function entries(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

test('item 9: per-pod metric series, lists and per-object dirs return to the baseline after pod cycles on runc and runsc', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const { d } = env;
  const baseline = await scrape(env);
  const baseSeries = baseline.length;
  const cycles: Array<[string, string]> = [
    ['leak-a', 'runc'],
    ['leak-b', 'runc'],
    ['leak-c', 'runsc'],
    ['leak-d', 'runc'],
  ];
  for (const [name, handler] of cycles) {
    const pod = await env.runPod(name, {}, handler);
    const ctr = await env.createContainer(pod, `${name}-c`, { command: ['/bin/sh', '-c', 'sleep 3600'] });
    await d.runtime('StartContainer', { container_id: ctr });
    await env.waitState(ctr, 'CONTAINER_RUNNING');
    // The scrape has the pod's series while it lives (else the check below proves nothing).
    await waitFor(`the series of ${name}`, async () => perObject(await scrape(env), name).length > 0, 60_000);
    await d.runtime('StopContainer', { container_id: ctr, timeout: 0 }, 60_000);
    await d.runtime('RemoveContainer', { container_id: ctr }, 60_000);
    await d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 60_000);
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 60_000);
  }
  const after = await scrape(env);
  assert.deepEqual(perObject(after, 'leak-'), [], 'no series of a removed pod or container stays');
  // The call histogram is labelled by service, method and code only.
  const hex = after.filter((l) => /[0-9a-f]{32,}/.test(l.split(' ')[0] ?? ''));
  assert.deepEqual(hex, [], 'no metric label carries an ID');
  const criSeries = new Set(after.filter((l) => l.startsWith('sandlot_cri_request_duration_seconds_count')).map((l) => l.split(' ')[0]));
  for (const s of criSeries) assert.match(s, /^sandlot_cri_request_duration_seconds_count\{service="\w+",method="\w+",code="\w+"\}$/);
  // Series beyond the per-call ones (the histogram, calls in flight), the process figures
  // and the exits by handler and reason (a fixed set) do not grow with the number of pods.
  const other = (ls: string[]) => ls.filter((l) => !/^(sandlot_cri_request|sandlot_container_exits_total|nodejs_|process_)/.test(l));
  assert.ok(
    other(after).length <= other(baseline).length,
    `series besides calls and process figures: ${other(baseline).length} before, ${other(after).length} after:\n${other(after)
      .filter((l) => !other(baseline).some((b) => b.split(' ')[0] === l.split(' ')[0]))
      .join('\n')}`,
  );
  assert.ok(after.length >= baseSeries);
  assert.deepEqual((await d.runtime('ListPodSandbox', {})).items, []);
  assert.deepEqual((await d.runtime('ListContainers', {})).containers, []);
  for (const dir of [path.join(d.rootDir, 'pods'), path.join(d.rootDir, 'containers'), path.join(d.stateDir, 'pods'), path.join(d.stateDir, 'containers')]) {
    assert.deepEqual(entries(dir), [], `nothing left under ${dir}`);
  }
});

test(
  'item 9: ContainerStatus, ListContainers and PodSandboxStatus answer while a graceful StopContainer waits out its timeout (no read waits for the lock)',
  { timeout: 240_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    const pod = await env.runPod('reader');
    const stubborn = await env.createContainer(pod, 'stubborn', {
      command: ['/bin/sh', '-c', 'trap "echo ignoring-term" TERM; echo ready; while true; do sleep 0.1; done'],
    });
    await d.runtime('StartContainer', { container_id: stubborn });
    await env.waitState(stubborn, 'CONTAINER_RUNNING');
    await waitFor('the trap to be set', async () => fs.readFileSync((await env.status(stubborn)).log_path, 'utf8').includes('ready'));
    let stopped = false;
    const stop = d.runtime('StopContainer', { container_id: stubborn, timeout: 60 }, 120_000).then(() => {
      stopped = true;
    });
    // The stop holds the container's lock for its 60 s; the reads answer before it ends.
    await waitFor(
      'the stop to have sent SIGTERM',
      async () => fs.readFileSync((await env.status(stubborn)).log_path, 'utf8').includes('ignoring-term'),
      60_000,
    );
    const st = await env.status(stubborn);
    assert.equal(st.state, 'CONTAINER_RUNNING');
    const listed = (await d.runtime('ListContainers', {})).containers as Array<{ id: string }>;
    assert.ok(listed.some((c) => c.id === stubborn));
    await d.runtime('PodSandboxStatus', { pod_sandbox_id: pod });
    assert.equal(stopped, false, 'every read answered while the stop was still waiting');
    // Ending it: a kill from outside (the test's own PID list) lets the stop finish.
    process.kill(Number((await env.info(stubborn)).pid), 'SIGKILL');
    await stop;
    assert.equal((await env.status(stubborn)).state, 'CONTAINER_EXITED');
  },
);
