// One CRI call per process, as crictl makes it: `node bench/lib/cri-call.mjs SOCKET METHOD JSON`
// prints the answer as JSON. crictl is not in Debian; this stands in for it, the same for
// both runtimes (a fresh node process, the project's built client, one unary call).
import process from 'node:process';
import { CriClient } from '../../dist/src/cli/client.js';

const [socket, method, body] = process.argv.slice(2);
const client = new CriClient(socket);
try {
  const res = await client.runtimeCall(method, JSON.parse(body ?? '{}'), { timeoutMs: 120_000 });
  process.stdout.write(`${JSON.stringify(res)}\n`);
} catch (e) {
  process.stderr.write(`${method}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  client.close();
}
