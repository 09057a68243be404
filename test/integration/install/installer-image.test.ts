// `make image`'s image, written as an oci-archive (the tar `make image` writes beside
// the layout) and imported into a test daemon, run *by sandlot*:
// - as the installer, on runc and on runsc (the node's handler may be either), with a
//   temporary directory as the host root at /host: it lays down bundle, unit and config
//   (the unit passes `systemd-analyze verify` in that root), labels the node through
//   @kubernetes/client-node against a local API server on 127.0.0.1 (host-network pod,
//   $KUBECONFIG), a second run reinstalls idempotently (runc), and `uninstall` removes the
//   label, bundle and unit;
// - as the daemon (the chart's values.image): a privileged container runs
//   `sandlot daemon` from the image and its own CLI gets a Version answer from it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { buildImage, IMAGE_NAME } from '../../../src/install/build-image.js';
import { BUNDLE_DIR, CONFIG_FILE, UNIT_FILE } from '../../../src/install/host-install.js';
import { RUNTIME_LABEL } from '../../../src/install/node-labeller.js';
import { REPO_ROOT } from '../../helpers/daemon.js';
import { fakeApiServer, kubeConfigText } from '../../unit/install/fake-api-server.js';
import { makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';

const execFileAsync = promisify(execFile);
const CUR = `${BUNDLE_DIR}/current`;
const HOST_NET = { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } } };

let built: Promise<string> | undefined;

/** `make image` once per test process: the layout and the oci-archive beside it. */
function imageArchive(): Promise<string> {
  built ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-image-build-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const archive = path.join(dir, 'sandlot.tar');
    await buildImage(path.join(dir, 'layout'), { archive });
    const head = fs.readFileSync(archive).subarray(0, 512).toString('latin1');
    assert.ok(head.startsWith('oci-layout'), 'the archive starts with the oci-layout file');
    return archive;
  })();
  return built;
}

let shared: Promise<{ env: ContainerEnv; work: string }> | undefined;
/** The shared env's cleanups, run after the file's last test (in the order registered, as t.after runs them). */
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanups) await fn();
});

/**
 * One daemon with the image imported, for both tests (an import unpacks the whole
 * bundle: it is done once). Cleaned up after the file's last test.
 */
function envWithImage(): Promise<{ env: ContainerEnv; work: string }> {
  shared ??= (async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-installer-img-'));
    cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
    const archive = await imageArchive();
    // Imported once the daemon is up (a preload of this size outlasts the start timeout).
    const env = await makeContainerEnv({ after: (fn) => cleanups.push(fn) });
    await execFileAsync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'image', 'import', archive, '--socket', env.d.socket], {
      cwd: REPO_ROOT,
      timeout: 600_000,
    });
    return { env, work };
  })();
  return shared;
}

test(
  'the image as installer, run by sandlot on runc and on runsc: installs into /host and labels the node, reinstalls, uninstalls',
  { timeout: 2_700_000 },
  async (t) => {
    const { env, work } = await envWithImage();
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { 'kubernetes.io/os': 'linux' } } };
    const api = await fakeApiServer(t, node);
    const kube = path.join(work, 'kube');
    fs.mkdirSync(kube);
    fs.writeFileSync(path.join(kube, 'config'), kubeConfigText(api.url));

    for (const handler of ['runc', 'runsc']) {
      const host = path.join(work, `host-${handler}`);
      fs.mkdirSync(host);
      const pod = await env.runPod(`installer-${handler}`, HOST_NET, handler);
      const runInstaller = async (name: string, args: string[]): Promise<string> => {
        const id = await env.createContainer(pod, name, {
          image: { image: IMAGE_NAME },
          args: [...args, '--root', '/host', '--node', 'node-a', '--once'],
          command: undefined,
          // api/cri.proto has KeyValue.value as bytes (the same wire encoding as the
          // kubelet's string): proto-loader reads a JS string for bytes as base64.
          envs: [{ key: 'KUBECONFIG', value: Buffer.from('/kube/config') }],
          mounts: [
            { container_path: '/host', host_path: host },
            { container_path: '/kube', host_path: kube, readonly: true },
          ],
        });
        await env.d.runtime('StartContainer', { container_id: id });
        const st = await env.waitState(id, 'CONTAINER_EXITED', 600_000);
        const log = (): string => fs.readFileSync(st.log_path, 'utf8');
        assert.equal(st.exit_code, 0, `${handler} ${name}: ${log()}`);
        // The installer's last line is its summary; conmon may still be writing it out.
        await waitFor(`${handler} ${name}'s summary in its log`, () => /labelled|already labelled|removed:/.test(log()));
        return log();
      };

      const first = await runInstaller(`install-1-${handler}`, ['install', '--from', CUR]);
      assert.match(first, /installed in \/host\/opt\/sandlot\/releases\//, handler);
      assert.match(first, /does not run systemd/, 'a temp root runs no systemd: nothing is started');
      assert.match(first, /node "node-a": labelled sandlot.dev\/runtime=/);
      assert.equal(
        node.metadata.labels[RUNTIME_LABEL as 'kubernetes.io/os'],
        (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
      );
      const patch = api.seen.find((s) => s.method === 'PATCH')!;
      assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
      assert.ok(fs.readlinkSync(path.join(host, BUNDLE_DIR, 'current')).startsWith('releases/'));
      assert.ok(fs.existsSync(path.join(host, BUNDLE_DIR, 'current/node')));
      assert.ok(fs.existsSync(path.join(host, CONFIG_FILE)));
      fs.cpSync('/usr/lib/systemd/system', path.join(host, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
      const verify = await execFileAsync('systemd-analyze', ['verify', '--man=no', `--root=${host}`, UNIT_FILE]);
      assert.equal(verify.stderr.trim(), '');

      // Idempotence once (runc): under runsc every copy goes through the gofer and takes minutes.
      if (handler === 'runc') {
        api.seen.length = 0;
        const second = await runInstaller(`install-2-${handler}`, ['install', '--from', CUR]);
        assert.match(second, /reinstalled/);
        assert.match(second, /already labelled/);
        assert.deepEqual(
          api.seen.map((s) => s.method),
          ['GET'],
          'a reinstall patches nothing',
        );
      }

      const removed = await runInstaller(`uninstall-${handler}`, ['uninstall']);
      assert.match(removed, /label sandlot.dev\/runtime removed/);
      assert.match(removed, /removed: .*\/opt\/sandlot/);
      assert.ok(!(RUNTIME_LABEL in node.metadata.labels), 'the label is gone');
      assert.ok(!fs.existsSync(path.join(host, BUNDLE_DIR)) && !fs.existsSync(path.join(host, UNIT_FILE)));
      assert.ok(fs.existsSync(path.join(host, CONFIG_FILE)), 'the config stays');
      await env.d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 120_000);
      await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 120_000);
    }
  },
);

test('the image as the daemon (values.image): `sandlot daemon` from it answers its own CLI', { timeout: 1_200_000 }, async () => {
  const { env } = await envWithImage();
  const pod = await env.runPod('daemon-img', {
    linux: { security_context: { privileged: true, namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  });
  const socket = '/run/inner/sandlot.sock';
  const id = await env.createContainer(pod, 'daemon', {
    image: { image: IMAGE_NAME },
    command: ['sandlot', 'daemon'],
    args: ['--socket', socket, '--root', '/var/lib/inner', '--state', '/run/inner', '--metrics-address', '127.0.0.1:0', '--streaming-address', '127.0.0.1:0'],
    linux: { security_context: { privileged: true } },
  });
  await env.d.runtime('StartContainer', { container_id: id });
  let answer = '';
  await waitFor(
    'the inner daemon answers Version',
    async () => {
      const st = await env.status(id);
      assert.equal(st.state, 'CONTAINER_RUNNING', `the inner daemon exited: ${fs.existsSync(st.log_path) ? fs.readFileSync(st.log_path, 'utf8') : ''}`);
      const r = await env.d.runtime('ExecSync', { container_id: id, cmd: ['sandlot', 'version', '--socket', socket], timeout: 60 }, 120_000);
      answer = Buffer.from(r.stdout as Uint8Array).toString('utf8');
      return r.exit_code === 0;
    },
    600_000,
  );
  assert.match(answer, /sandlot/i);
  // The runtimes it runs are the image's own (copied from Debian's packages, with their libraries).
  for (const cmd of [
    ['runc', '--version'],
    ['conmon', '--version'],
    ['catatonit', '--version'],
    ['iptables', '--version'],
    ['/usr/lib/cni/bridge', '--version'],
  ]) {
    const r = await env.d.runtime('ExecSync', { container_id: id, cmd, timeout: 60 }, 120_000);
    assert.equal(r.exit_code, 0, `${cmd.join(' ')}: ${Buffer.from(r.stderr as Uint8Array).toString('utf8')}`);
  }
});
