// `sandlot daemon` loads its own verb alone (src/cli/main.ts) and pino-pretty only for a
// terminal (src/observe/logger.ts): what the client verbs need (progress bars, terminal
// width) never sits in the daemon's heap (issue 13, memory). Seen through the CommonJS
// module cache of a fresh process that parsed `daemon --help` and made a JSON logger.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { REPO_ROOT } from '../../helpers/daemon.js';

const SCRIPT = `
import { createRequire } from 'node:module';
const { main } = await import('./src/cli/main.ts');
const { createLogger } = await import('./src/observe/logger.ts');
const code = await main(['daemon', '--help']);
createLogger('info', { pretty: false });
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/')).map((k) => k.replace(/.*\\/node_modules\\/((@[^/]+\\/)?[^/]+).*/, '$1'));
process.stderr.write(JSON.stringify({ code, loaded: [...new Set(loaded)] }));
`;

test('sandlot daemon --help loads no client-verb packages and no pino-pretty, and still prints the daemon flags', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--config/);
  const { code, loaded } = JSON.parse(r.stderr.slice(r.stderr.indexOf('{"code"'))) as { code: number; loaded: string[] };
  assert.equal(code, 0);
  assert.ok(loaded.includes('commander'), `the module cache is seen: ${loaded.join(', ')}`);
  for (const pkg of ['cli-progress', 'string-width', 'pino-pretty']) assert.ok(!loaded.includes(pkg), `${pkg} is loaded: ${loaded.join(', ')}`);
});
