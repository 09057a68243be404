// Host install: lays a self-contained sandlot bundle (the build, its production
// node_modules, the API files and the Node runtime it runs on) under <root>/opt/sandlot,
// a systemd unit sandlot.service and, if none exists yet, a config file. The same code
// is what `make install` runs and what an installer DaemonSet would run against the
// host's root (docs/node-install.md). An install is idempotent; a new version is a new
// release directory and a swap of the `current` symlink, so the unit always starts a
// complete bundle; `KillMode=process` and conmon_cgroup keep containers running across a
// restart of the unit. Uninstall removes the bundle and the unit, and keeps the config
// and the daemon's state unless asked to purge.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { packageRoot } from '../util/package-info.js';
import { DAEMON_NODE_FLAGS } from '../config/node-flags.js';

export const UNIT_NAME = 'sandlot.service';
export const BUNDLE_DIR = '/opt/sandlot';
export const CONFIG_FILE = '/etc/sandlot/config.yaml';
export const UNIT_FILE = `/etc/systemd/system/${UNIT_NAME}`;
/** What the bundle holds from the package root, besides node_modules. */
const BUNDLE_ENTRIES = ['package.json', 'dist', 'api', 'bin', 'src/oci/runsc-shim.sh'];

export interface InstallOptions {
  /** The host's root ("/" for a real install, a temp dir in tests). */
  root: string;
  /** The built package to bundle (default: this one). */
  from?: string;
  /** The Node binary to bundle (default: the running one). */
  node?: string;
  /** systemctl daemon-reload + enable --now (only meaningful with root "/"). */
  start?: boolean;
}

export interface InstallResult {
  version: string;
  release: string;
  /** What changed: "installed", "upgraded" or "reinstalled". */
  action: 'installed' | 'upgraded' | 'reinstalled';
  configWritten: boolean;
}

const under = (root: string, p: string): string => path.join(root, p);

function packageVersion(from: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(from, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || !/^[0-9A-Za-z.+-]+$/.test(pkg.version)) {
    throw new Error(`${from}/package.json: a version such as "0.1.0" is required`);
  }
  return pkg.version;
}

/** The production dependencies' directories under node_modules, as npm resolves them. */
function productionModules(from: string): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: from, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return (
    out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(path.join(from, 'node_modules') + path.sep))
      .map((l) => path.relative(from, l))
      .sort()
      // A nested module comes along with the one it is nested in.
      .filter((m, i, all) => !all.slice(0, i).some((a) => m.startsWith(a + path.sep)))
  );
}

/** A bundle already laid down (it carries its own node), as in the installer image. */
export function isBundle(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'node')) && fs.existsSync(path.join(dir, 'dist/src/install/host-install.js'));
}

/** cp(1) is much faster than fs.cpSync on many small files; symlinks are followed. */
function copyInto(from: string, rels: string[], to: string): void {
  for (const dir of new Set(rels.map((r) => path.dirname(r)))) fs.mkdirSync(path.join(to, dir), { recursive: true });
  for (const r of rels) execFileSync('cp', ['-RLp', path.join(from, r), path.join(to, path.dirname(r)) + '/']);
}

/** The systemd unit for a bundle at BUNDLE_DIR/current. */
export function unitText(): string {
  const cur = `${BUNDLE_DIR}/current`;
  return `# Installed by sandlot's host installer (src/install/host-install.ts); a reinstall replaces it.
[Unit]
Description=sandlot Kubernetes CRI runtime (runc and gVisor runsc handlers)
Documentation=https://kubernetes.io/docs/setup/production-environment/container-runtimes/
After=network-online.target local-fs.target
Wants=network-online.target
Before=kubelet.service

[Service]
Type=simple
ExecStart=${cur}/node ${DAEMON_NODE_FLAGS.join(' ')} ${cur}/dist/src/cli/bin.js daemon --config ${CONFIG_FILE}
Environment=PATH=${cur}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Only the daemon is stopped on a restart or upgrade: conmon and the containers it
# monitors stay (they are also moved out of this unit's cgroup: conmon_cgroup).
KillMode=process
Restart=always
RestartSec=2
Delegate=yes
OOMScoreAdjust=-999
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity

[Install]
WantedBy=multi-user.target
`;
}

/** The config a fresh host install starts with (an existing file is kept). */
export function hostConfigText(): string {
  return `# sandlot configuration (README: Configuration); \`sandlot config check ${CONFIG_FILE}\` validates it.
${YAML.stringify({
  socket_path: '/run/sandlot/sandlot.sock',
  root_dir: '/var/lib/sandlot',
  state_dir: '/run/sandlot',
  metrics_address: '127.0.0.1:9436',
  cni_conf_dir: '/etc/cni/net.d',
  cni_bin_dirs: ['/usr/lib/cni', '/opt/cni/bin'],
  cgroup_root: '/',
  conmon_cgroup: '/sandlot-conmon',
})}`;
}

function writeAtomic(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.sandlot-tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

function systemctl(args: string[]): void {
  execFileSync('systemctl', args, { stdio: 'inherit' });
}

export function install(o: InstallOptions): InstallResult {
  const root = path.resolve(o.root);
  const from = o.from ?? packageRoot();
  const version = packageVersion(from);
  if (!fs.existsSync(path.join(from, 'dist/src/cli/bin.js'))) throw new Error(`${from}/dist is missing: run "make build" first`);
  const bundle = under(root, BUNDLE_DIR);
  const releases = path.join(bundle, 'releases');
  const release = path.join(releases, version);
  const current = path.join(bundle, 'current');
  const previous = fs.existsSync(current) ? fs.readlinkSync(current) : undefined;

  // A complete release first, then one rename puts it in place.
  fs.mkdirSync(releases, { recursive: true });
  const staging = path.join(releases, `.${version}.staging-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  try {
    // From a bundle (the installer image's own): all of it; from a checkout: what runs.
    const entries = isBundle(from) ? fs.readdirSync(from) : [...BUNDLE_ENTRIES, ...productionModules(from)];
    copyInto(from, entries, staging);
    if (!isBundle(from)) {
      fs.copyFileSync(o.node ?? process.execPath, path.join(staging, 'node'));
      fs.chmodSync(path.join(staging, 'node'), 0o755);
    }
    const old = fs.existsSync(release) ? `${release}.old-${process.pid}` : undefined;
    if (old) fs.renameSync(release, old);
    fs.renameSync(staging, release);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  const link = `${current}.sandlot-tmp`;
  fs.rmSync(link, { force: true });
  fs.symlinkSync(path.join('releases', version), link);
  fs.renameSync(link, current);
  // Keep only the release now current and the one before it (a way back).
  for (const r of fs.readdirSync(releases)) {
    const rel = path.join('releases', r);
    if (rel !== path.join('releases', version) && rel !== previous) fs.rmSync(path.join(releases, r), { recursive: true, force: true });
  }

  writeAtomic(under(root, UNIT_FILE), unitText());
  const configFile = under(root, CONFIG_FILE);
  const configWritten = !fs.existsSync(configFile);
  if (configWritten) writeAtomic(configFile, hostConfigText());
  const wrapper = under(root, '/usr/local/bin/sandlot');
  fs.mkdirSync(path.dirname(wrapper), { recursive: true });
  writeAtomic(wrapper, `#!/bin/sh\nexec ${BUNDLE_DIR}/current/node ${DAEMON_NODE_FLAGS.join(' ')} ${BUNDLE_DIR}/current/dist/src/cli/bin.js "$@"\n`, 0o755);

  if (o.start) {
    systemctl(['daemon-reload']);
    systemctl(['enable', UNIT_NAME]);
    systemctl(['restart', UNIT_NAME]);
  }
  const action = previous === undefined ? 'installed' : previous === path.join('releases', version) ? 'reinstalled' : 'upgraded';
  return { version, release, action, configWritten };
}

export interface UninstallOptions {
  root: string;
  /** Also remove the config file and the daemon's root and state dirs. */
  purge?: boolean;
  stop?: boolean;
}

export function uninstall(o: UninstallOptions): string[] {
  const root = path.resolve(o.root);
  if (o.stop) {
    try {
      systemctl(['disable', '--now', UNIT_NAME]);
    } catch {
      // not loaded: nothing to stop
    }
  }
  const removed: string[] = [];
  const paths = [UNIT_FILE, BUNDLE_DIR, '/usr/local/bin/sandlot', ...(o.purge ? ['/etc/sandlot', '/var/lib/sandlot', '/run/sandlot'] : [])];
  for (const p of paths) {
    const full = under(root, p);
    if (fs.existsSync(full) || fs.lstatSync(full, { throwIfNoEntry: false })) {
      fs.rmSync(full, { recursive: true, force: true });
      removed.push(p);
    }
  }
  if (o.stop) systemctl(['daemon-reload']);
  return removed;
}

/** `node dist/src/install/host-install.js install|uninstall [--root DIR] [--start] [--purge]`. */
function main(argv: string[]): number {
  const [verb, ...rest] = argv;
  const flag = (name: string): boolean => rest.includes(name);
  const rootIdx = rest.indexOf('--root');
  const root = rootIdx >= 0 ? rest[rootIdx + 1] : '/';
  if (root === undefined || !path.isAbsolute(root)) {
    process.stderr.write('sandlot-install: --root needs an absolute directory\n');
    return 2;
  }
  const live = root === '/' && fs.existsSync('/run/systemd/system');
  if (verb === 'install') {
    const fromIdx = rest.indexOf('--from');
    const from = fromIdx >= 0 ? rest[fromIdx + 1] : undefined;
    const r = install({ root, start: flag('--start') && live, ...(from ? { from } : {}) });
    process.stdout.write(`sandlot ${r.version}: ${r.action} in ${r.release}${r.configWritten ? `; wrote ${CONFIG_FILE}` : `; kept ${CONFIG_FILE}`}\n`);
    if (!live || !flag('--start')) process.stdout.write(`start it with: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}\n`);
    return 0;
  }
  if (verb === 'uninstall') {
    const removed = uninstall({ root, purge: flag('--purge'), stop: live });
    process.stdout.write(`removed: ${removed.join(', ') || 'nothing'}\n`);
    return 0;
  }
  process.stderr.write('usage: host-install install|uninstall [--root DIR] [--from BUNDLE] [--start] [--purge]\n');
  return 2;
}

// Real paths: the bundle is run through its `current` symlink.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)) {
  // exitCode, not exit(): stdout on a pipe (conmon's) is written asynchronously.
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e: unknown) {
    process.stderr.write(`sandlot-install: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
