// The daemon's cost per NEW connection (issue 13): the crictl way, a fresh Go gRPC client
// process per call (bench/lib/cri-raw). Starts this checkout's daemon and each
// --baseline's (its own test/helpers/daemon.ts, so its own dist/ and Node flags), then
// runs --rounds rounds; in each, every daemon in turn (rotating the order) serves
// --batch one-call processes one after the other. Per daemon: its CPU per call (all its
// threads, /proc/PID/task/*/schedstat, read around each batch) and the wall per call as
// the caller sees it (spawn to exit). Daemons log at info. Prints medians over the
// batches; asserts nothing.
//   node --import tsx bench/new-connection.ts [--rounds 10] [--batch 15] [--method Version] [--baseline CHECKOUT]…
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { processCaller, type CriRuntime } from './lib/cri-runtime.js';
import { threadsCpuMs } from './lib/proc-usage.js';
import { median } from './lib/stats.js';

type Starter = typeof startDaemon;
type Method = 'Version' | 'ListPodSandbox';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '10' },
      batch: { type: 'string', default: '15' },
      method: { type: 'string', default: 'Version' },
      baseline: { type: 'string', multiple: true, default: [] },
    },
  });
  const rounds = Number(values.rounds);
  const batch = Number(values.batch);
  const method = values.method as Method;
  const targets: Array<{ name: string; start: Starter }> = [{ name: 'sandlot', start: startDaemon }];
  for (const dir of values.baseline ?? []) {
    const helper = (await import(pathToFileURL(path.join(path.resolve(dir), 'test/helpers/daemon.ts')).href)) as { startDaemon: Starter };
    targets.push({ name: `sandlot@${path.basename(dir)}`, start: helper.startDaemon });
  }
  const daemons: TestDaemon[] = [];
  try {
    // At info, as a node runs it: the test helper's debug level logs every call.
    for (const t of targets) daemons.push(await t.start({ built: true, config: { log_level: 'info' } }));
    const callers = daemons.map((d) => processCaller({ socket: d.socket } as CriRuntime));
    const cpu: number[][] = daemons.map(() => []);
    const wall: number[][] = daemons.map(() => []);
    const req = method === 'Version' ? { version: '' } : {};
    // Warm-up: every daemon's code paths once, not timed.
    for (const c of callers) for (let i = 0; i < 3; i++) await c(method, req);
    await sleep(500);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < daemons.length; k++) {
        const i = (r + k) % daemons.length;
        const pid = daemons[i].pid!;
        const before = threadsCpuMs(pid);
        const t0 = process.hrtime.bigint();
        for (let n = 0; n < batch; n++) await callers[i](method, req);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        // Let the last connection's close reach the daemon and be handled.
        await sleep(50);
        cpu[i].push((threadsCpuMs(pid) - before) / batch);
        wall[i].push(ms / batch);
      }
    }
    for (let i = 0; i < daemons.length; i++) {
      const c = cpu[i].slice().sort((a, b) => a - b);
      console.log(
        `${targets[i].name.padEnd(24)} ${method}: daemon CPU/call median ${median(cpu[i]).toFixed(3)} ms (min ${c[0].toFixed(3)}, max ${c[c.length - 1].toFixed(3)}), wall/call median ${median(wall[i]).toFixed(2)} ms  [${rounds} batches x ${batch}]`,
      );
    }
  } finally {
    for (const d of daemons) await d.cleanup();
  }
}

await main();
