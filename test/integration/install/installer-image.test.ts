// `make image`'s installer image, imported into a test daemon and run *by sandlot* (runc)
// with a temporary directory as the host root at /host: it lays down bundle, unit and
// config (the unit passes `systemd-analyze verify` in that root), a second run
// reinstalls idempotently, and `uninstall` removes bundle and unit.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildImage, IMAGE_NAME } from '../../../src/install/build-image.js';
import { BUNDLE_DIR, CONFIG_FILE, UNIT_FILE } from '../../../src/install/host-install.js';
import { REPO_ROOT } from '../../helpers/daemon.js';
import { makeContainerEnv, waitFor } from '../container/container-env.js';

const execFileAsync = promisify(execFile);

test('the installer image run by sandlot (runc) installs into /host, reinstalls, uninstalls', { timeout: 900_000 }, async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-installer-img-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const layout = path.join(work, 'image');
  await buildImage(layout);
  const host = path.join(work, 'host');
  fs.mkdirSync(host);

  // Imported once the daemon is up (a preload of this size outlasts the start timeout).
  const env = await makeContainerEnv(t);
  await execFileAsync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'image', 'import', layout, '--socket', env.d.socket], {
    cwd: REPO_ROOT,
    timeout: 600_000,
  });
  const pod = await env.runPod('installer');
  const runInstaller = async (name: string, args?: string[]): Promise<string> => {
    const id = await env.createContainer(pod, name, {
      image: { image: IMAGE_NAME },
      ...(args ? { args } : {}),
      command: undefined,
      mounts: [{ container_path: '/host', host_path: host }],
    });
    await env.d.runtime('StartContainer', { container_id: id });
    const st = await env.waitState(id, 'CONTAINER_EXITED', 600_000);
    assert.equal(st.exit_code, 0, `${name}: ${fs.readFileSync(st.log_path, 'utf8')}`);
    // The installer's last line is its summary; conmon may still be writing it out.
    await waitFor(`${name}'s summary in its log`, () => /(installed|reinstalled|upgraded) in|removed:/.test(fs.readFileSync(st.log_path, 'utf8')));
    return fs.readFileSync(st.log_path, 'utf8');
  };

  const first = await runInstaller('install-1');
  assert.match(first, /installed in \/host\/opt\/sandlot\/releases\//);
  assert.equal(fs.readlinkSync(path.join(host, BUNDLE_DIR, 'current')).startsWith('releases/'), true);
  assert.ok(fs.existsSync(path.join(host, BUNDLE_DIR, 'current/node')));
  assert.ok(fs.existsSync(path.join(host, CONFIG_FILE)));
  fs.cpSync('/usr/lib/systemd/system', path.join(host, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const verify = await execFileAsync('systemd-analyze', ['verify', '--man=no', `--root=${host}`, UNIT_FILE]);
  assert.equal(verify.stderr.trim(), '');

  const second = await runInstaller('install-2');
  assert.match(second, /reinstalled/);
  assert.match(second, /kept \/etc\/sandlot\/config.yaml/);

  const removed = await runInstaller('uninstall', ['uninstall', '--root', '/host']);
  assert.match(removed, /removed: .*\/opt\/sandlot/);
  assert.ok(!fs.existsSync(path.join(host, BUNDLE_DIR)) && !fs.existsSync(path.join(host, UNIT_FILE)));
  assert.ok(fs.existsSync(path.join(host, CONFIG_FILE)), 'the config stays');
});
