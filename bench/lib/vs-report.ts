// Prints what bench/vs-containerd.ts measured: the issue-13 table (containerd, sandlot,
// ratio sandlot ÷ containerd), per-RPC p50/p95, and the one `summary:` line.
import { LIFECYCLE } from './cri-runtime.js';
import { READ_RPCS } from './read-rounds.js';
import { mib, median, ms, percentile, printTable, ratio, type Timings } from './stats.js';
import type { PullFigures, ScaleFigures } from './vs-phases.js';

export interface RunFigures {
  seq: Record<string, Timings>;
  par: Record<string, Timings>;
  perCall: Record<string, Timings>;
  parWallMs: Record<string, number[]>;
  cpuPerPodMs: Record<string, number[]>;
  freshIdleKiB: Record<string, number>;
  scale: Record<string, ScaleFigures>;
  /** Per runtime: the 1 MiB pulls, then the 200 MiB one. */
  pulls: Record<string, { small: PullFigures[]; big?: PullFigures }>;
  reps: number;
  pods: number;
  perCallPods: number;
}

type Row = [string, number, number, (v: number) => string];

const S = 'sandlot';
const C = 'containerd';

function rpcRows(title: string, t: Record<string, Timings>, why = false): void {
  console.log(`\n${title}`);
  const rows = [...LIFECYCLE, 'total'].map((rpc) => {
    const [c, s] = [t[C]?.[rpc] ?? [], t[S]?.[rpc] ?? []];
    return [rpc, ms(percentile(c, 50)), ms(percentile(s, 50)), ratio(percentile(s, 50), percentile(c, 50)), ms(percentile(c, 95)), ms(percentile(s, 95))];
  });
  // sandlot creates in CreateContainer what containerd creates in StartContainer: the sums compare.
  const sum = (r: string): number => percentile(t[r]?.CreateContainer ?? [], 50) + percentile(t[r]?.StartContainer ?? [], 50);
  rows.push(['Create+Start (p50 sum)', ms(sum(C)), ms(sum(S)), ratio(sum(S), sum(C)), '', '']);
  printTable(['RPC', 'containerd p50', 'sandlot p50', 'ratio', 'containerd p95', 'sandlot p95'], rows);
  if (!why) return;
  console.log(
    '  why CreateContainer differs: sandlot starts conmon and `runc create` in CreateContainer (the container process exists, not started, when it returns);\n' +
      '  containerd makes its shim and task at StartContainer: compare the Create+Start sum. The runtime delete: containerd deletes the task in its exit\n' +
      '  handler (before StopContainer returns), sandlot begins it when the exit is recorded, in the background (RemoveContainer waits for it if it still runs).',
  );
}

/** The reads at the top level by both clients: the Go one (the table's figures) and this process's grpc-js one. */
function readRows(f: RunFigures, top: number): void {
  console.log(
    `\nList/Status at ${top} pods, one after another, by client: Go (grpc-go, timed in its own process: the table's figures) and the bench's grpc-js`,
  );
  const rows = READ_RPCS.map((rpc) => {
    const p = (r: string, k: 'reads' | 'nodeReads', q: number) => ms(percentile(f.scale[r]?.[k][rpc] ?? [], q));
    return [
      rpc,
      `${p(C, 'reads', 50)} / ${p(C, 'reads', 99)}`,
      `${p(S, 'reads', 50)} / ${p(S, 'reads', 99)}`,
      `${p(C, 'nodeReads', 50)} / ${p(C, 'nodeReads', 99)}`,
      `${p(S, 'nodeReads', 50)} / ${p(S, 'nodeReads', 99)}`,
    ];
  });
  printTable(['RPC (p50 / p99)', 'containerd, Go', 'sandlot, Go', 'containerd, grpc-js', 'sandlot, grpc-js'], rows);
}

const level = (f: ScaleFigures | undefined, pods: number) => f?.levels.find((l) => l.pods === pods);

function mainRows(f: RunFigures, levels: number[]): Row[] {
  const m = (x: Record<string, Timings>, r: string, k: string) => median(x[r]?.[k] ?? []);
  const rows: Row[] = [
    [`pod lifecycle, ${f.pods} one after another (median per pod)`, m(f.seq, C, 'total'), m(f.seq, S, 'total'), ms],
    [`the same, a process per call (${f.perCallPods} pods)`, m(f.perCall, C, 'total'), m(f.perCall, S, 'total'), ms],
    [`${f.pods} pods at once, wall (median of reps)`, median(f.parWallMs[C] ?? []), median(f.parWallMs[S] ?? []), ms],
    ['daemon CPU per pod lifecycle (children excluded)', median(f.cpuPerPodMs[C] ?? []), median(f.cpuPerPodMs[S] ?? []), ms],
    ['daemon RSS just started', f.freshIdleKiB[C] ?? NaN, f.freshIdleKiB[S] ?? NaN, mib],
    ['daemon RSS idle, warm (before the scale phase)', f.scale[C]?.idleDaemon.rssKiB ?? NaN, f.scale[S]?.idleDaemon.rssKiB ?? NaN, mib],
  ];
  for (const n of [0, ...levels]) {
    const [c, s] = [level(f.scale[C], n), level(f.scale[S], n)];
    rows.push([`runtime RSS at ${n} pods (daemon + per-pod helpers)`, c?.runtime.rssKiB ?? NaN, s?.runtime.rssKiB ?? NaN, mib]);
    rows.push([`runtime PSS at ${n} pods`, c?.runtime.pssKiB ?? NaN, s?.runtime.pssKiB ?? NaN, mib]);
    if (n > 0) rows.push([`  daemon alone RSS at ${n} pods`, c?.daemon.rssKiB ?? NaN, s?.daemon.rssKiB ?? NaN, mib]);
  }
  rows.push([`daemon RSS idle after the ${levels.at(-1)} pods are gone`, f.scale[C]?.idleAfter.rssKiB ?? NaN, f.scale[S]?.idleAfter.rssKiB ?? NaN, mib]);
  const top = levels.at(-1)!;
  for (const rpc of READ_RPCS) {
    const [c, s] = [f.scale[C]?.reads[rpc] ?? [], f.scale[S]?.reads[rpc] ?? []];
    rows.push([`at ${top} pods: ${rpc} p50`, percentile(c, 50), percentile(s, 50), ms]);
    rows.push([`at ${top} pods: ${rpc} p99`, percentile(c, 99), percentile(s, 99), ms]);
  }
  for (const rpc of READ_RPCS) {
    const [c, s] = [f.scale[C]?.loadedReads[rpc] ?? [], f.scale[S]?.loadedReads[rpc] ?? []];
    rows.push([`at ${top} pods, pods starting: ${rpc} p50`, percentile(c, 50), percentile(s, 50), ms]);
    rows.push([`at ${top} pods, pods starting: ${rpc} p99`, percentile(c, 99), percentile(s, 99), ms]);
  }
  const pull = (r: string, k: keyof PullFigures) => median((f.pulls[r]?.small ?? []).map((p) => p[k]));
  const big = (r: string, k: keyof PullFigures) => f.pulls[r]?.big?.[k] ?? NaN;
  rows.push(['PullImage 1 MiB: wall (median of 3)', pull(C, 'wallMs'), pull(S, 'wallMs'), ms]);
  rows.push(['PullImage 200 MiB (5 layers): wall', big(C, 'wallMs'), big(S, 'wallMs'), ms]);
  rows.push(['  daemon CPU', big(C, 'cpuMs'), big(S, 'cpuMs'), ms]);
  rows.push(['  daemon peak RSS (RSS just before)', big(C, 'peakKiB'), big(S, 'peakKiB'), mib]);
  rows.push(['  daemon RSS just before the pull', big(C, 'beforeKiB'), big(S, 'beforeKiB'), mib]);
  return rows;
}

export function report(f: RunFigures, levels: number[]): void {
  const top = levels.at(-1)!;
  console.log(`\nsandlot vs containerd: ${f.pods} pods, ${f.reps} alternating repetitions, runc, ${f.perCallPods} pods per process-per-call run`);
  console.log(
    '(process per call: crictl is not in Debian; a fresh bench/lib/cri-raw per RPC, a Go gRPC client that dials, calls once and exits, stands in for it, for both runtimes)\n',
  );
  printTable(
    ['figure', 'containerd', 'sandlot', 'sandlot ÷ containerd'],
    mainRows(f, levels).map(([name, c, s, fmt]) => [name, fmt(c), fmt(s), ratio(s, c)]),
  );
  readRows(f, top);
  rpcRows(`per RPC, one after another (${f.reps} × ${f.pods} pods)`, f.seq, true);
  rpcRows(`per RPC, ${f.pods} at once (${f.reps} reps)`, f.par);
  rpcRows(`per RPC, a process per call (${f.reps} × ${f.perCallPods} pods)`, f.perCall);
  const r = (x: number, y: number): string => (Number.isFinite(x / y) ? `${(x / y).toFixed(2)}×` : 'n/a');
  const s = f.scale[S];
  const listP99 = Math.max(...['ListPodSandbox', 'PodSandboxStatus', 'ListContainers'].map((k) => percentile(s?.reads[k] ?? [], 99)));
  const rss = (n: string) => level(f.scale[n], Math.min(20, top))?.runtime.rssKiB ?? NaN;
  const summary = [
    `lifecycle ${r(median(f.seq[S]?.total ?? []), median(f.seq[C]?.total ?? []))}`,
    `crictl ${r(median(f.perCall[S]?.total ?? []), median(f.perCall[C]?.total ?? []))}`,
    `at-once ${r(median(f.parWallMs[S] ?? []), median(f.parWallMs[C] ?? []))}`,
    `cpu ${r(median(f.cpuPerPodMs[S] ?? []), median(f.cpuPerPodMs[C] ?? []))}`,
    `rss20 ${r(rss(S), rss(C))}`,
    `list-p99 ${listP99.toFixed(1)} ms`,
    `pull200 ${r(f.pulls[S]?.big?.wallMs ?? NaN, f.pulls[C]?.big?.wallMs ?? NaN)}`,
  ];
  console.log(`\nsummary: ${summary.join(' ')}`);
}
