// `make image`: one OCI image that is both the node's daemon (values.image of the chart
// in its daemon mode: `sandlot daemon`) and its installer (the chart's installer mode:
// the entrypoint lays sandlot down on a host mounted at /host, node-installer.ts).
// The rootfs: busybox with all its applets (a shell for the runsc shim and debugging),
// the bundle as the host installer lays it (/opt/sandlot/current with its own node),
// the runtimes the daemon runs (runc, runsc, conmon, catatonit, iptables for the CNI
// portmap plugin, and the CNI plugins in /usr/lib/cni) copied from this host's Debian
// packages, and the shared libraries all of them need. Written as an OCI layout and,
// with --archive, as an oci-archive (the layout's files in a tar, as `skopeo copy
// oci-archive:` and `ctr image import` read it).
//   node dist/src/install/build-image.js OUT_DIR [--archive FILE] [--name NAME]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../errors.js';
import { makeBusyboxRootfs, writeOciLayout } from '../image/oci-layout-writer.js';
import { packageRoot, packageVersion } from '../util/package-info.js';
import { BUNDLE_DIR, install } from './host-install.js';

const CUR = `${BUNDLE_DIR}/current`;
export const IMAGE_NAME = `localhost/sandlot:${packageVersion()}`;
/** Host binaries the daemon runs, found on PATH, copied at the same path. */
const RUNTIME_BINARIES = [
  'runc',
  'runsc',
  'conmon',
  'catatonit',
  'iptables',
  'iptables-save',
  'iptables-restore',
  'ip6tables',
  'ip6tables-save',
  'ip6tables-restore',
];
const CNI_DIR = '/usr/lib/cni';
/** iptables-nft's extensions (dlopened, so ldd does not name them). */
const XTABLES_DIR = '/usr/lib/x86_64-linux-gnu/xtables';
const IMAGE_PATH = `${CUR}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

/** The libraries `ldd` names for a binary (and the loader); none for a static one. */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // "not a dynamic executable"
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

function which(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new NotFoundError(`building the image: "${name}" is not on PATH (apt-get install runc runsc conmon catatonit iptables containernetworking-plugins)`);
}

/** Copies `file` (following links) to the same path under `rootfs`, with its libraries. */
function copyWithLibraries(rootfs: string, file: string, seen: Set<string>): void {
  const target = path.join(rootfs, file);
  if (!fs.existsSync(target)) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(fs.realpathSync(file), target);
    fs.chmodSync(target, fs.statSync(file).mode & 0o7777);
  }
  copyLibraries(rootfs, file, seen);
}

function copyLibraries(rootfs: string, file: string, seen: Set<string>): void {
  for (const lib of sharedLibraries(file)) {
    if (seen.has(lib)) continue;
    seen.add(lib);
    fs.mkdirSync(path.join(rootfs, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(rootfs, lib));
  }
}

/** Every applet busybox has, as a symlink in /bin (the ones already there are kept). */
function busyboxApplets(rootfs: string): void {
  const list = execFileSync(path.join(rootfs, 'bin/busybox'), ['--list'], { encoding: 'utf8' });
  for (const applet of list.split('\n').filter((a) => /^[\w.[-]+$/.test(a))) {
    const link = path.join(rootfs, 'bin', applet);
    if (!fs.lstatSync(link, { throwIfNoEntry: false })) fs.symlinkSync('busybox', link);
  }
}

export interface BuildImageOptions {
  name?: string;
  /** Also write the image as an oci-archive (a tar of the layout) to this file. */
  archive?: string;
}

export async function buildImage(out: string, opts: BuildImageOptions = {}): Promise<void> {
  const name = opts.name ?? IMAGE_NAME;
  const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-image-'));
  try {
    await makeBusyboxRootfs(rootfs);
    busyboxApplets(rootfs); // the installer copies with cp(1), the runsc shim needs mkfifo
    install({ root: rootfs, from: packageRoot() });
    // Only the bundle belongs in the image; the unit and config are the host's.
    fs.rmSync(path.join(rootfs, 'etc/systemd'), { recursive: true, force: true });
    fs.rmSync(path.join(rootfs, 'etc/sandlot'), { recursive: true, force: true });
    const seen = new Set<string>();
    copyLibraries(rootfs, process.execPath, seen); // the bundle has its own node
    for (const bin of RUNTIME_BINARIES) {
      const p = which(bin);
      // iptables and friends are links to one multi-call binary: keep them links.
      const real = fs.realpathSync(p);
      if (real !== p) {
        copyWithLibraries(rootfs, real, seen);
        fs.mkdirSync(path.join(rootfs, path.dirname(p)), { recursive: true });
        fs.rmSync(path.join(rootfs, p), { force: true });
        fs.symlinkSync(real, path.join(rootfs, p));
      } else {
        copyWithLibraries(rootfs, p, seen);
      }
    }
    for (const plugin of fs.readdirSync(CNI_DIR)) copyWithLibraries(rootfs, path.join(CNI_DIR, plugin), seen);
    if (fs.existsSync(XTABLES_DIR)) {
      for (const ext of fs.readdirSync(XTABLES_DIR)) copyWithLibraries(rootfs, path.join(XTABLES_DIR, ext), seen);
    }
    fs.rmSync(out, { recursive: true, force: true });
    await writeOciLayout({
      rootfs,
      out,
      name,
      config: {
        Env: [`PATH=${IMAGE_PATH}`],
        Entrypoint: [`${CUR}/node`, `${CUR}/dist/src/install/node-installer.js`],
        Cmd: ['install', '--root', '/host', '--from', CUR],
        Labels: { 'org.opencontainers.image.title': 'sandlot (daemon and node installer)', 'org.opencontainers.image.version': packageVersion() },
      },
    });
    if (opts.archive) writeOciArchive(out, opts.archive);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

/**
 * An oci-archive: the layout's files at the top of a tar, reproducible (sorted, owner
 * 0, mtime 0). GNU tar at build time; nothing at run time.
 */
export function writeOciArchive(layout: string, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-C',
    layout,
    '-cf',
    tmp,
    'oci-layout',
    'index.json',
    'blobs',
  ]);
  fs.renameSync(tmp, file);
}

// Real paths: the bundle is run through its `current` symlink.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)) {
  const [out, ...rest] = process.argv.slice(2);
  const opt = (flag: string): string | undefined => (rest.includes(flag) ? rest[rest.indexOf(flag) + 1] : undefined);
  if (!out || out.startsWith('--')) {
    process.stderr.write('usage: build-image OUT_DIR [--archive FILE] [--name NAME]\n');
    process.exit(2);
  }
  const archive = opt('--archive');
  const name = opt('--name');
  buildImage(path.resolve(out), { ...(name ? { name } : {}), ...(archive ? { archive: path.resolve(archive) } : {}) }).then(
    () => process.stdout.write(`wrote ${name ?? IMAGE_NAME} to ${out}${archive ? ` and ${archive}` : ''}\n`),
    (e: unknown) => {
      process.stderr.write(`build-image: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
