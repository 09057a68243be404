// Where a daemon's CPU went: reads a V8 .cpuprofile (what `node --cpu-prof` writes at
// exit) and prints self time by function and by file, and inclusive time by file for the
// project's own code (src/, native/), so a benchmark can say where the remaining time goes.
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A file's name relative to the repository (or the module's own name under node_modules). */
function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + 1);
  for (const top of ['/dist/src/', '/dist/native/', '/src/', '/native/']) {
    const i = p.indexOf(top);
    if (i >= 0) return p.slice(i + (top.startsWith('/dist') ? 6 : 1));
  }
  return p.startsWith('node:') ? p : path.basename(p);
}

function top(m: Map<string, number>, n: number, totalMs: number): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `  ${(v / 1000).toFixed(0).padStart(7)} ms ${((v / 1000 / totalMs) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

/** Prints the summary of the one .cpuprofile in `dir` (the newest if several). */
export function printCpuProfile(dir: string, rows = 15): void {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (files.length === 0) {
    console.log(`no .cpuprofile in ${dir} (the daemon did not exit cleanly?)`);
    return;
  }
  const prof = JSON.parse(fs.readFileSync(files[0], 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  const inclusiveOwn = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    totalUs += us;
    if (n.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const file = shortUrl(n.callFrame.url);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${file}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
    // Inclusive per own file: each own file on the sample's stack counts once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = shortUrl(byId.get(cur)!.callFrame.url);
      if ((f.startsWith('src/') || f.startsWith('native/')) && !seen.has(f)) {
        seen.add(f);
        inclusiveOwn.set(f, (inclusiveOwn.get(f) ?? 0) + us);
      }
    }
  }
  const busyMs = (totalUs - idleUs) / 1000;
  console.log(`\ndaemon CPU profile (${path.basename(files[0])}): ${busyMs.toFixed(0)} ms busy of ${(totalUs / 1000).toFixed(0)} ms sampled`);
  console.log(`self time by function (top ${rows}):`);
  console.log(top(byFn, rows, busyMs).join('\n'));
  console.log(`self time by file (top ${rows}):`);
  console.log(top(byFile, rows, busyMs).join('\n'));
  console.log(`inclusive time of sandlot's own files (top ${rows}):`);
  console.log(top(inclusiveOwn, rows, busyMs).join('\n'));
}
