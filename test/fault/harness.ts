// The crash harness (issue 11): drives pod/container lifecycles on runc and runsc and
// SIGKILLs the daemon at a seeded delay into each mutating RPC (RunPodSandbox,
// CreateContainer, StartContainer, ExecSync, StopContainer, RemoveContainer,
// StopPodSandbox, RemovePodSandbox, PullImage from a local registry), restarts it on
// the same root and state, and checks: every acknowledged object is listed with its
// true state, witnesses keep running and keep their exit codes, the retried call
// succeeds, and after removal through the CRI nothing is left (processes, mounts,
// netns, cgroups, veths, IPAM leases, files beyond the empty skeleton).
import fs from 'node:fs';
import path from 'node:path';
import { buildImage, buildLayer } from '../helpers/image-build.js';
import { pushImage, startRegistry } from '../helpers/registry.js';
import { alive, makeContainerEnv, podConfig, containerConfig, type ContainerEnv } from '../integration/container/container-env.js';
import { seededRandom } from '../helpers/seeded-random.js';

export interface CrashFigures {
  points: number;
  /** Kills that landed before the call answered. */
  midCall: number;
  killedWorkloads: number;
  lostExitCodes: number;
  retryFailures: number;
  wrongStates: number;
  leaks: Record<string, number>;
  problems: string[];
}

type Op =
  | 'RunPodSandbox'
  | 'CreateContainer'
  | 'StartContainer'
  | 'ExecSync'
  | 'StopContainer'
  | 'RemoveContainer'
  | 'StopPodSandbox'
  | 'RemovePodSandbox'
  | 'PullImage';
/** The spread of kill delays per call, ms (about each call's duration here). */
const SPREAD: Record<Op, number> = {
  RunPodSandbox: 1500,
  CreateContainer: 700,
  StartContainer: 500,
  ExecSync: 400,
  StopContainer: 1200,
  RemoveContainer: 500,
  StopPodSandbox: 900,
  RemovePodSandbox: 900,
  PullImage: 300,
};
const CALL_MS = 120_000;
/**
 * A stopped sleeper's true codes: 137 (SIGKILL after the timeout; runc's PID 1 ignores
 * SIGTERM) or 143 (measured on runsc: the sentry delivers SIGTERM to it).
 */
const STOP_CODES = [137, 143];

interface Host {
  after(fn: () => void | Promise<void>): void;
}

export async function runCrashHarness(t: Host, opts: { seed: number; points: number; log?: (s: string) => void }): Promise<CrashFigures> {
  const log = opts.log ?? (() => undefined);
  const rand = seededRandom(opts.seed);
  const fig: CrashFigures = { points: 0, midCall: 0, killedWorkloads: 0, lostExitCodes: 0, retryFailures: 0, wrongStates: 0, leaks: {}, problems: [] };
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const image = buildImage([await buildLayer([{ type: 'file', name: 'crash', data: 'x' }])]);
  await pushImage(reg, 'fault/small', 'v1', image);
  // The built daemon (as `make test` leaves dist/): every point restarts it, and tsx would
  // transpile the sources at each start.
  const env = await makeContainerEnv(t, { config: { insecure_registries: [reg.host] }, built: true });
  const { d } = env;
  const problem = (s: string) => {
    fig.problems.push(s);
    log(`PROBLEM ${s}`);
  };

  // Witnesses, one pod per handler: a sleeper that must keep running and a container
  // that exited 7 and must keep that code through every crash.
  const witnesses: Array<{ handler: string; pod: string; sleeper: string; pid: number; exited: string }> = [];
  for (const handler of ['runc', 'runsc']) {
    const pod = await env.runPod(`witness-${handler}`, {}, handler);
    const sleeper = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 36000'] });
    await d.runtime('StartContainer', { container_id: sleeper }, CALL_MS);
    const exited = await env.createContainer(pod, 'seven', { command: ['/bin/sh', '-c', 'exit 7'] });
    await d.runtime('StartContainer', { container_id: exited }, CALL_MS);
    await env.waitState(exited, 'CONTAINER_EXITED');
    witnesses.push({ handler, pod, sleeper, pid: Number((await env.info(sleeper)).pid), exited });
  }

  const checkWitnesses = async (at: string) => {
    for (const w of witnesses) {
      const s = await env.status(w.sleeper);
      if (s.state !== 'CONTAINER_RUNNING' || (w.handler === 'runc' && !alive(w.pid))) {
        fig.killedWorkloads++;
        problem(`${at}: witness ${w.handler} sleeper is ${s.state} (${s.reason}) alive=${alive(w.pid)}`);
      }
      const e = await env.status(w.exited);
      if (e.state !== 'CONTAINER_EXITED' || e.exit_code !== 7) {
        fig.lostExitCodes++;
        problem(`${at}: witness ${w.handler} exit code ${e.state} ${e.exit_code}`);
      }
    }
  };

  /** One call with a kill `delay` ms after it began; then restart and the retry. */
  const crashAt = async (
    op: Op,
    handler: string,
    call: () => Promise<Record<string, unknown>>,
    verify: (acked: Record<string, unknown> | undefined) => Promise<void>,
  ) => {
    const delay = Math.floor(rand() * SPREAD[op]);
    let answered = false;
    const p = call().then(
      (r) => {
        answered = true;
        return r;
      },
      () => {
        answered = true;
        return undefined;
      },
    );
    await new Promise((r) => setTimeout(r, delay));
    if (!answered) fig.midCall++;
    await d.kill9();
    const acked = await p;
    await d.start();
    fig.points++;
    const at = `point ${fig.points} ${op} ${handler} +${delay}ms${acked ? ' (acked)' : ''}`;
    log(at);
    try {
      await verify(acked);
    } catch (e) {
      fig.wrongStates++;
      problem(`${at}: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      // The kubelet retries a call that got no answer: that retry must succeed.
      if (!acked) await call();
    } catch (e) {
      fig.retryFailures++;
      problem(`${at}: retry failed: ${(e as { details?: string }).details ?? String(e)}`);
    }
    await checkWitnesses(at);
  };

  const listPods = async (name: string) =>
    (((await d.runtime('ListPodSandbox', {})).items as Array<{ id: string; state: string; metadata: { name: string } }> | undefined) ?? []).filter(
      (p) => p.metadata.name === name,
    );
  const listCtrs = async (podId: string) =>
    ((await d.runtime('ListContainers', { filter: { pod_sandbox_id: podId } })).containers as Array<{ id: string; state: string }> | undefined) ?? [];
  const expect = (cond: boolean, what: string) => {
    if (!cond) throw new Error(what);
  };

  let cycle = 0;
  while (fig.points < opts.points) {
    const handler = cycle % 2 === 0 ? 'runc' : 'runsc';
    const name = `cycle-${cycle}`;
    cycle++;
    const pc = podConfig(name, env.logDir);
    const cc = containerConfig('work', { command: ['/bin/sh', '-c', 'sleep 36000'] });
    let pod = '';
    let ctr = '';
    await crashAt(
      'RunPodSandbox',
      handler,
      async () => {
        const r = await d.runtime('RunPodSandbox', { config: pc, runtime_handler: handler }, CALL_MS);
        pod = String(r.pod_sandbox_id);
        return r;
      },
      async (acked) => {
        const pods = await listPods(name);
        if (acked)
          expect(
            pods.some((p) => p.id === acked.pod_sandbox_id && p.state === 'SANDBOX_READY'),
            'acked pod not listed READY',
          );
        expect(
          pods.every((p) => p.state === 'SANDBOX_READY' || p.state === 'SANDBOX_NOTREADY'),
          'pod in no state',
        );
      },
    );
    // Drop duplicates a lost answer may have made: the kubelet would remove them too.
    for (const p of await listPods(name)) if (p.id !== pod) await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }, CALL_MS);
    env.pids.push((await env.podInfo(pod)).pid);
    if (fig.points >= opts.points) break;

    await crashAt(
      'CreateContainer',
      handler,
      async () => {
        const r = await d.runtime('CreateContainer', { pod_sandbox_id: pod, config: cc, sandbox_config: pc }, CALL_MS);
        ctr = String(r.container_id);
        return r;
      },
      async (acked) => {
        const cs = await listCtrs(pod);
        if (acked)
          expect(
            cs.some((c) => c.id === acked.container_id && c.state === 'CONTAINER_CREATED'),
            'acked container not listed CREATED',
          );
      },
    );
    for (const c of await listCtrs(pod)) if (c.id !== ctr) await d.runtime('RemoveContainer', { container_id: c.id }, CALL_MS);
    if (fig.points >= opts.points) break;

    await crashAt(
      'StartContainer',
      handler,
      () => d.runtime('StartContainer', { container_id: ctr }, CALL_MS),
      async (acked) => {
        const s = await env.status(ctr);
        if (acked) expect(s.state === 'CONTAINER_RUNNING', `acked start but ${s.state} ${s.reason}`);
        expect(s.reason !== 'StartError', `a crash mid-start made it ${s.state} StartError`);
        if (s.state === 'CONTAINER_RUNNING') {
          const pid = Number((await env.info(ctr)).pid);
          env.pids.push(pid);
          if (handler === 'runc') expect(alive(pid), 'RUNNING but its process is gone');
        }
      },
    );
    if (fig.points >= opts.points) break;
    const running = Number((await env.info(ctr)).pid);
    env.pids.push(running);

    await crashAt(
      'ExecSync',
      handler,
      () => d.runtime('ExecSync', { container_id: ctr, cmd: ['/bin/sh', '-c', 'echo ok'], timeout: 30 }, CALL_MS),
      async () => {
        const s = await env.status(ctr);
        expect(s.state === 'CONTAINER_RUNNING', `the exec's container is ${s.state}`);
        const scratch = path.join(d.stateDir, 'exec');
        expect(!fs.existsSync(scratch) || fs.readdirSync(scratch).length === 0, 'exec scratch dirs stay after restart');
      },
    );
    if (fig.points >= opts.points) break;

    await crashAt(
      'StopContainer',
      handler,
      () => d.runtime('StopContainer', { container_id: ctr, timeout: 1 }, CALL_MS),
      async (acked) => {
        const s = await env.status(ctr);
        if (acked) expect(s.state === 'CONTAINER_EXITED' && STOP_CODES.includes(s.exit_code), `acked stop but ${s.state} ${s.exit_code}`);
      },
    );
    {
      const s = await env.status(ctr);
      if (!STOP_CODES.includes(s.exit_code)) {
        fig.lostExitCodes++;
        problem(`cycle ${cycle}: stopped container's exit code ${s.exit_code} (${s.reason}), not that of SIGKILL or SIGTERM`);
      }
    }
    if (fig.points >= opts.points) break;

    await crashAt(
      'RemoveContainer',
      handler,
      () => d.runtime('RemoveContainer', { container_id: ctr }, CALL_MS),
      async (acked) => {
        if (acked) expect(!(await listCtrs(pod)).some((c) => c.id === ctr), 'acked removal but listed');
      },
    );
    if (fig.points >= opts.points) break;

    await crashAt(
      'StopPodSandbox',
      handler,
      () => d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, CALL_MS),
      async (acked) => {
        if (acked)
          expect(
            (await listPods(name)).some((p) => p.id === pod && p.state === 'SANDBOX_NOTREADY'),
            'acked stop but not NOTREADY',
          );
      },
    );
    if (fig.points >= opts.points) break;

    await crashAt(
      'RemovePodSandbox',
      handler,
      () => d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_MS),
      async (acked) => {
        if (acked) expect((await listPods(name)).length === 0, 'acked removal but listed');
      },
    );
    if (fig.points >= opts.points) break;

    const ref = `${reg.host}/fault/small:v1`;
    await crashAt(
      'PullImage',
      handler,
      () => d.image('PullImage', { image: { image: ref } }, CALL_MS),
      async (acked) => {
        const st = await d.image('ImageStatus', { image: { image: ref } });
        if (acked) expect(st.image !== undefined && st.image !== null, 'acked pull but the image is not there');
      },
    );
    await d.image('RemoveImage', { image: { image: ref } }, CALL_MS).catch((e: { details?: string }) => problem(`removing the pulled image: ${e.details}`));
  }

  // Removal of everything through the CRI, then what is left.
  for (const p of ((await d.runtime('ListPodSandbox', {})).items as Array<{ id: string }> | undefined) ?? []) {
    for (const c of await listCtrs(p.id)) await d.runtime('RemoveContainer', { container_id: c.id }, CALL_MS);
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }, CALL_MS);
  }
  fig.leaks = leftovers(env);
  for (const [kind, n] of Object.entries(fig.leaks)) if (n > 0) problem(`leak: ${n} ${kind}`);
  return fig;
}

const entries = (dir: string): string[] => {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
};

/** What a daemon without pods may still hold, by kind (the empty skeleton excluded). */
function leftovers(env: ContainerEnv): Record<string, number> {
  const { d } = env;
  const dir = fs.realpathSync(d.dir);
  const skeleton = new Set([path.join(dir, 'state', 'netns')]);
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => (p === dir || p.startsWith(`${dir}/`)) && !skeleton.has(p));
  const cgroupParent = String(d.config.default_cgroup_parent);
  let cgroups = 0;
  for (const h of entries('/sys/fs/cgroup')) {
    const base = path.join('/sys/fs/cgroup', h, String(d.config.cgroup_root), cgroupParent);
    cgroups += entries(base).filter((e) => fs.statSync(path.join(base, e), { throwIfNoEntry: false })?.isDirectory()).length;
  }
  const bridge = String(d.config.cni_default_bridge);
  const leases = entries(path.join(d.stateDir, 'cni', 'networks')).flatMap((n) =>
    entries(path.join(d.stateDir, 'cni', 'networks', n)).filter((f) => /^\d+\.\d+\.\d+\.\d+$|^[0-9a-f:]+$/.test(f) && f.includes('.')),
  );
  const files = [
    ...['pods', 'containers', 'exec', 'cni/results'].flatMap((s) => entries(path.join(d.stateDir, s)).map((e) => `state/${s}/${e}`)),
    ...['pods', 'containers'].flatMap((s) => entries(path.join(d.rootDir, s)).map((e) => `root/${s}/${e}`)),
    ...entries(path.join(d.stateDir, 'exits')).map((e) => `state/exits/${e}`),
    // The rootfs references (image-store.ts): one file per container rootfs or image volume.
    ...entries(path.join(d.rootDir, 'images', 'rootfs-refs')).map((e) => `root/images/rootfs-refs/${e}`),
  ];
  return {
    processes: env.pids.filter((p) => alive(p)).length,
    mounts: mounts.length,
    netns: entries(path.join(d.stateDir, 'netns')).length,
    cgroups,
    veths: entries(`/sys/class/net/${bridge}/brif`).length,
    ipamLeases: leases.length,
    files: files.length,
  };
}
