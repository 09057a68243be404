// The long crash run (issue 11): `node --import tsx test/fault/crash-long.ts [points] [seed]`
// (default 200 points, seed 20261204). Prints every point and the figures; exits 1 on
// any problem.
import { runCrashHarness } from './harness.js';

const points = Number(process.argv[2] ?? process.env.SANDLOT_FAULT_POINTS ?? 200);
const seed = Number(process.argv[3] ?? process.env.SANDLOT_FAULT_SEED ?? 20261204);
const afters: Array<() => void | Promise<void>> = [];
let code = 0;
try {
  const fig = await runCrashHarness({ after: (fn) => afters.push(fn) }, { seed, points, log: (s) => console.log(s) });
  console.log(
    `points ${fig.points} (mid-call ${fig.midCall}), killed workloads ${fig.killedWorkloads}, lost exit codes ${fig.lostExitCodes}, failed retries ${fig.retryFailures}, wrong states ${fig.wrongStates}`,
  );
  console.log(
    `leaks: ${Object.entries(fig.leaks)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  for (const p of fig.problems) console.log(`problem: ${p}`);
  if (fig.problems.length > 0) code = 1;
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  for (const fn of afters.reverse()) await Promise.resolve(fn()).catch((e: unknown) => console.error('cleanup:', e));
}
process.exit(code);
