// Debian's containerd, started privately for a benchmark: its own root, state, sockets
// and config under one temp dir; a private CNI conf dir holding a bridge without default
// route; registry hosts (config_path) pointing at the local registry over plain HTTP;
// a runc wrapper that moves absolute cgroupsPath values under the bench's cgroup root
// (else pods land at hierarchy roots); restrict_oom_score_adj (the root here cannot
// lower oom_score_adj). stop() removes everything it made, even after a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriClient } from '../../src/cli/client.js';
import { unmountUnder } from '../../test/helpers/daemon.js';
import { helperPids } from './proc-usage.js';

const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;
const CALL_TIMEOUT_MS = 120_000;
const CNI_BIN_DIR = '/usr/lib/cni';
const RUNC = '/usr/sbin/runc';
const SHIM = 'containerd-shim-runc-v2';

export interface ContainerdOptions {
  /** The directory everything goes under (removed by stop()). */
  dir: string;
  /** Registry hosts (host:port) containerd reaches over plain HTTP. */
  registries: string[];
  /** The image RunPodSandbox runs as the pause container. */
  sandboxImage: string;
  /** The bench's cgroup root: absolute cgroupsPath values are moved below it. */
  cgroupRoot: string;
  subnet: string;
  bridge: string;
}

export class PrivateContainerd {
  client: CriClient;
  private child: ChildProcess | undefined;
  private log = '';

  constructor(readonly opts: ContainerdOptions) {
    this.client = new CriClient(this.socket);
  }

  get socket(): string {
    return path.join(this.opts.dir, 'containerd.sock');
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  private get networkName(): string {
    return `ctd-bench-${process.pid}`;
  }

  async start(): Promise<void> {
    writeFiles(this.opts, this.networkName);
    const child = spawn('containerd', ['--config', path.join(this.opts.dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (this.log = (this.log + d).slice(-20_000)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode} while starting:\n${this.log}`);
      if (fs.existsSync(this.socket)) {
        const ready = await this.client
          .runtimeCall('Status', {}, { timeoutMs: 5000 })
          .then((s) => (s.status?.conditions ?? []).every((c) => c.status))
          .catch(() => false);
        if (ready) return;
      }
      if (Date.now() > deadline) throw new Error(`containerd was not ready within ${START_TIMEOUT_MS} ms:\n${this.log}`);
      await sleep(100);
    }
  }

  /** Removes every pod through CRI, stops containerd, then whatever a failure left. */
  async stop(): Promise<void> {
    const { dir } = this.opts;
    if (this.child && this.child.exitCode === null) {
      const pods = await this.client.runtimeCall('ListPodSandbox', {}, { timeoutMs: 30_000 }).catch(() => ({ items: [] }));
      for (const p of pods.items ?? []) {
        await this.client.runtimeCall('StopPodSandbox', { pod_sandbox_id: p.id }, { timeoutMs: CALL_TIMEOUT_MS }).catch(() => undefined);
        await this.client.runtimeCall('RemovePodSandbox', { pod_sandbox_id: p.id }, { timeoutMs: CALL_TIMEOUT_MS }).catch(() => undefined);
      }
      this.client.close();
      await stopChild(this.child);
    }
    // Shims and containers a failure left: by PID (shims name our socket), by runc's own root.
    for (const pid of helperPids(SHIM, dir)) killPid(pid);
    const runcRoot = path.join(dir, 'runc-root');
    for (const ns of fs.existsSync(runcRoot) ? fs.readdirSync(runcRoot) : []) {
      const root = path.join(runcRoot, ns);
      const ids = spawnSync(RUNC, ['--root', root, 'list', '-q'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
      for (const id of ids) spawnSync(RUNC, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
    }
    unmountUnder(dir);
    if (fs.existsSync(`/sys/class/net/${this.opts.bridge}`)) spawnSync('ip', ['link', 'delete', 'dev', this.opts.bridge], { stdio: 'ignore' });
    // libcni caches results under /var/lib/cni/results as <network>-<container>-<ifname>.
    const cache = '/var/lib/cni/results';
    for (const f of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
      if (f.startsWith(`${this.networkName}-`)) fs.rmSync(path.join(cache, f), { force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(STOP_GRACE_MS)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function writeFiles(o: ContainerdOptions, networkName: string): void {
  const d = o.dir;
  for (const sub of ['root', 'state', 'cni', 'certs.d', 'opt', 'runc-root', 'ipam']) fs.mkdirSync(path.join(d, sub), { recursive: true });
  const wrapper = path.join(d, 'runc-wrapper');
  // The shim runs `runc … create --bundle B … ID`: B/config.json is compact JSON from containerd.
  fs.writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      'prev=; cmd=; bundle=',
      'for a in "$@"; do',
      '  case "$prev" in --bundle|-b) bundle=$a ;; esac',
      '  case "$a" in create|run) [ -z "$cmd" ] && cmd=$a ;; --bundle=*) bundle=${a#--bundle=} ;; esac',
      '  prev=$a',
      'done',
      `if [ -n "$cmd" ] && [ -n "$bundle" ]; then sed -i 's#"cgroupsPath":"/#"cgroupsPath":"${o.cgroupRoot.replace(/\/$/, '')}/#' "$bundle/config.json"; fi`,
      `exec ${RUNC} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  for (const host of o.registries) {
    fs.mkdirSync(path.join(d, 'certs.d', host), { recursive: true });
    fs.writeFileSync(
      path.join(d, 'certs.d', host, 'hosts.toml'),
      `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
  }
  // The same network sandlot's default is: bridge + host-local + portmap, no default route.
  const conflist = {
    cniVersion: '1.0.0',
    name: networkName,
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir: path.join(d, 'ipam'), ranges: [[{ subnet: o.subnet }]] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  fs.writeFileSync(path.join(d, 'cni', '10-bench.conflist'), JSON.stringify(conflist, null, 2));
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  fs.writeFileSync(
    path.join(d, 'config.toml'),
    `version = 2
root = "${d}/root"
state = "${d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${d}/containerd.sock"
[ttrpc]
  address = "${d}/containerd.sock.ttrpc"
[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/opt"

[${cri}]
  sandbox_image = "${o.sandboxImage}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        BinaryName = "${wrapper}"
        Root = "${d}/runc-root"
        SystemdCgroup = false
  [${cri}.cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${d}/cni"
    max_conf_num = 1
  [${cri}.registry]
    config_path = "${d}/certs.d"
`,
  );
}
