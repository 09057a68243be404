// Entry point of the `sandlot` executable.
import { main } from './main.js';

// `sandlot ps | head -1`: the reader went away, which is no error of ours. Exit quietly
// as other Unix tools do (they die of SIGPIPE; Node ignores it and reports EPIPE).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sandlot: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
