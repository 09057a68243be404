// The long-lived spawner of bench/spawn-ways.ts: a small Node process started once that
// starts programs on request and reports their exits. It keeps no state but the running
// children, so its heap (and so its fork cost) stays small however big the caller grows.
// Requests on stdin, one JSON object a line: {"id":N,"file":"runc","args":["--version"]}.
// Answers on stdout, one a line: {"id":N,"pid":P} once started, then {"id":N,"code":C,
// "signal":S} at its exit ({"id":N,"error":"…"} when it could not start).
import { spawn } from 'node:child_process';
import process from 'node:process';
import readline from 'node:readline';

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, file, args } = JSON.parse(line);
  const child = spawn(file, args, { stdio: 'ignore' });
  child.once('spawn', () => say({ id, pid: child.pid }));
  child.once('error', (e) => say({ id, error: e.message }));
  child.once('exit', (code, signal) => say({ id, code, signal }));
});
