// The installer DaemonSet's entrypoint with fakes for what lies outside its files (the
// host's systemctl through nsenter, the CRI Status poll, the node API): on a host
// root that runs systemd it lays the bundle, reloads/enables/restarts the unit, waits
// for RuntimeReady, then labels the node; without systemd it starts nothing; a Status
// that never comes is UNAVAILABLE and the node stays unlabelled; uninstall unlabels,
// disables and removes. Flags are checked (INVALID_ARGUMENT naming the flag).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BUNDLE_DIR, UNIT_FILE } from '../../../src/install/host-install.js';
import { HOST_SOCKET, parseArgs, runNodeInstaller, type InstallerDeps } from '../../../src/install/node-installer.js';
import { RUNTIME_LABEL, type NodeApi } from '../../../src/install/node-labeller.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** An error predicate: a typed error with this code whose message matches. */
const coded =
  (code: string, re = /./) =>
  (e: unknown): boolean => {
    const x = e as { code?: unknown; message?: unknown };
    return x.code === code && re.test(String(x.message));
  };

function fakes(readyAfter: number): InstallerDeps & { calls: string[]; labels: Record<string, string> } {
  const calls: string[] = [];
  const labels: Record<string, string> = {};
  let polls = 0;
  const api: NodeApi = {
    readNodeLabels(node) {
      calls.push(`get ${node}`);
      return Promise.resolve({ ...labels });
    },
    patchNodeLabels(node, patch) {
      calls.push(`patch ${node} ${JSON.stringify(patch)}`);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete labels[k];
        else labels[k] = v;
      }
      return Promise.resolve();
    },
  };
  return {
    calls,
    labels,
    hostSystemctl(args) {
      calls.push(`systemctl ${args.join(' ')}`);
      return Promise.resolve();
    },
    runtimeReady(socket) {
      calls.push(`status ${socket}`);
      return Promise.resolve(++polls > readyAfter);
    },
    nodeApi: () => api,
    log: () => undefined,
  };
}

test(
  'install on a systemd host: bundle, then daemon-reload/enable/restart, Status polled until ready, then the label; uninstall reverses it',
  { timeout: 600_000 },
  async (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-node-inst-'));
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.mkdirSync(path.join(root, 'run/systemd/system'), { recursive: true });
    const deps = fakes(2);
    const base = { root, from: REPO_ROOT, node: 'node-a', start: true, purge: false, statusWaitMs: 60_000 };
    await runNodeInstaller({ ...base, verb: 'install' }, deps);
    assert.ok(fs.existsSync(path.join(root, BUNDLE_DIR, 'current/node')));
    const socket = path.join(root, HOST_SOCKET);
    assert.deepEqual(deps.calls, [
      'systemctl daemon-reload',
      'systemctl enable sandlot.service',
      'systemctl restart sandlot.service',
      `status ${socket}`,
      `status ${socket}`,
      `status ${socket}`,
      'get node-a',
      `patch node-a {"${RUNTIME_LABEL}":"${VERSION}"}`,
    ]);

    deps.calls.length = 0;
    await runNodeInstaller({ ...base, verb: 'uninstall' }, deps);
    assert.deepEqual(deps.calls, [
      'get node-a',
      `patch node-a {"${RUNTIME_LABEL}":null}`,
      'systemctl disable --now sandlot.service',
      'systemctl daemon-reload',
    ]);
    assert.deepEqual(deps.labels, {});
    assert.ok(!fs.existsSync(path.join(root, BUNDLE_DIR)) && !fs.existsSync(path.join(root, UNIT_FILE)));
  },
);

test(
  'a host without systemd gets the files only; a Status that never answers is UNAVAILABLE and leaves the node unlabelled',
  { timeout: 600_000 },
  async (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-node-inst-'));
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    const plain = fakes(0);
    const base = { root, from: REPO_ROOT, node: 'node-a', start: true, purge: false, statusWaitMs: 1_000 };
    await runNodeInstaller({ ...base, verb: 'install' }, plain);
    assert.deepEqual(plain.calls, ['get node-a', `patch node-a {"${RUNTIME_LABEL}":"${VERSION}"}`], 'no systemctl, no Status wait');
    assert.ok(fs.existsSync(path.join(root, UNIT_FILE)), 'the unit is laid down for the operator to start');

    fs.mkdirSync(path.join(root, 'run/systemd/system'), { recursive: true });
    const never = fakes(Number.POSITIVE_INFINITY);
    await assert.rejects(
      runNodeInstaller({ ...base, verb: 'install' }, never),
      coded('UNAVAILABLE', new RegExp(`"${path.join(root, HOST_SOCKET)}": no RuntimeReady`)),
    );
    assert.ok(!never.calls.some((c) => c.startsWith('patch')), 'no label for a runtime that does not answer');
  },
);

test('flags: defaults, NODE_NAME from the downward API, bad values are INVALID_ARGUMENT naming the flag', () => {
  const o = parseArgs(['install'], { NODE_NAME: 'node-a' });
  assert.deepEqual(o, { verb: 'install', root: '/host', node: 'node-a', start: true, purge: false, once: false, statusWaitMs: 120_000 });
  assert.deepEqual(parseArgs(['uninstall', '--root', '/h', '--purge', '--once', '--no-start', '--node', 'n1'], {}), {
    verb: 'uninstall',
    root: '/h',
    node: 'n1',
    start: false,
    purge: true,
    once: true,
    statusWaitMs: 120_000,
  });
  const bad = (argv: string[], re: RegExp): void => assert.throws(() => parseArgs(argv, {}), coded('INVALID_ARGUMENT', re));
  bad(['upgrade'], /verb "upgrade"/);
  bad(['install', '--root', 'host'], /--root "host"/);
  bad(['install', '--wait-ms', '-5'], /--wait-ms needs a value|--wait-ms "-5"/);
  bad(['install', '--wait-ms', '1.5'], /--wait-ms "1.5"/);
  bad(['install', '--nodes', 'x'], /unknown flag "--nodes"/);
  bad(['install', '--node'], /--node needs a value/);
});
