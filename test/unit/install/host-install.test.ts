// The host installer against a temporary directory as the host root: it lays down a
// self-contained bundle (its own Node, production node_modules only), the unit
// sandlot.service (checked by `systemd-analyze verify` in that root) and a config the
// bundled CLI accepts; a second run reinstalls in place and keeps the operator's
// config; uninstall removes bundle and unit, keeping config and state unless purged.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BUNDLE_DIR, CONFIG_FILE, install, UNIT_FILE, uninstall } from '../../../src/install/host-install.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

const execFileAsync = promisify(execFile);

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileAsync(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** The host tree without the bundle's contents (what the report shows). */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      const rel = '/' + path.relative(root, full);
      if (rel.startsWith('/usr/lib/systemd')) continue;
      out.push(e.isSymbolicLink() ? `${rel} -> ${fs.readlinkSync(full)}` : e.isDirectory() ? `${rel}/` : rel);
      if (e.isDirectory() && !/\/releases\/[^/]+$/.test(rel)) walk(full);
    }
  };
  walk(root);
  return out.sort();
}

test('host install into a temp root: bundle, unit (systemd-analyze verify), config; reinstall in place; uninstall', { timeout: 600_000 }, async (t) => {
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/bin.js')), 'dist/ is built (make build)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hostroot-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));

  const first = install({ root, from: REPO_ROOT });
  assert.equal(first.action, 'installed');
  assert.equal(first.configWritten, true);
  const cur = path.join(root, BUNDLE_DIR, 'current');
  assert.equal(fs.readlinkSync(cur), `releases/${first.version}`);
  for (const f of ['node', 'dist/src/cli/bin.js', 'api/cri.proto', 'src/oci/runsc-shim.sh', 'node_modules/@grpc/grpc-js/package.json']) {
    assert.ok(fs.existsSync(path.join(cur, f)), `the bundle holds ${f}`);
  }
  assert.ok(!fs.existsSync(path.join(cur, 'node_modules/typescript')), 'no dev dependency in the bundle');
  assert.ok(!fs.existsSync(path.join(cur, 'node_modules/kubernetes-models')), 'no dev dependency in the bundle');
  process.stdout.write(
    `# host tree:\n${tree(root)
      .map((l) => `#   ${l}`)
      .join('\n')}\n`,
  );

  // The bundle runs on its own Node and modules: its CLI accepts the config it laid down.
  const check = await run(path.join(cur, 'node'), [path.join(cur, 'dist/src/cli/bin.js'), 'config', 'check', path.join(root, CONFIG_FILE)]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /valid sandlot configuration/);

  // systemd-analyze resolves ExecStart inside the root and needs the stock targets there.
  fs.cpSync('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const verify = await run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, UNIT_FILE]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'no warning on the unit');
  const unit = fs.readFileSync(path.join(root, UNIT_FILE), 'utf8');
  assert.match(unit, /^KillMode=process$/m, 'a restart stops only the daemon, not conmon');

  // Second run: same version, in place; the operator's config stays.
  fs.appendFileSync(path.join(root, CONFIG_FILE), 'log_level: debug\n');
  const again = install({ root, from: REPO_ROOT });
  assert.equal(again.action, 'reinstalled');
  assert.equal(again.configWritten, false);
  assert.match(fs.readFileSync(path.join(root, CONFIG_FILE), 'utf8'), /log_level: debug/);
  assert.deepEqual(fs.readdirSync(path.join(root, BUNDLE_DIR, 'releases')), [first.version], 'no staging or old copy left');
  assert.equal((await run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, UNIT_FILE])).code, 0);

  // Uninstall keeps config and state; purge removes them too.
  fs.mkdirSync(path.join(root, 'var/lib/sandlot'), { recursive: true });
  assert.deepEqual(uninstall({ root }).sort(), [BUNDLE_DIR, UNIT_FILE, '/usr/local/bin/sandlot'].sort());
  assert.ok(fs.existsSync(path.join(root, CONFIG_FILE)) && fs.existsSync(path.join(root, 'var/lib/sandlot')));
  assert.ok(!fs.existsSync(path.join(root, BUNDLE_DIR)) && !fs.existsSync(path.join(root, UNIT_FILE)));
  assert.deepEqual(uninstall({ root, purge: true }).sort(), ['/etc/sandlot', '/var/lib/sandlot'].sort());
});
