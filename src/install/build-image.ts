// `make image`: an OCI image layout holding the sandlot bundle and its installer, so
// that a pod (run by any runtime, sandlot included) can lay sandlot down on a host
// mounted at /host. The rootfs is busybox (a shell for debugging), the bundle as the
// host installer lays it (/opt/sandlot/current with its own node) and the shared
// libraries that node needs. Entrypoint: the installer; Cmd: `install --root /host`.
//   node dist/src/install/build-image.js OUT_DIR [NAME]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeBusyboxRootfs, writeOciLayout } from '../image/oci-layout-writer.js';
import { packageRoot, packageVersion } from '../util/package-info.js';
import { BUNDLE_DIR, install } from './host-install.js';

export const IMAGE_NAME = `localhost/sandlot-installer:${packageVersion()}`;
const CUR = `${BUNDLE_DIR}/current`;

/** The libraries `ldd` names for a binary (and the loader). */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

export async function buildImage(out: string, name = IMAGE_NAME): Promise<void> {
  const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-image-'));
  try {
    await makeBusyboxRootfs(rootfs);
    // The installer copies with cp(1) (busybox's, in the image).
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'cp'));
    install({ root: rootfs, from: packageRoot() });
    // Only the bundle belongs in the image; the unit and config are the host's.
    fs.rmSync(path.join(rootfs, 'etc/systemd'), { recursive: true, force: true });
    fs.rmSync(path.join(rootfs, 'etc/sandlot'), { recursive: true, force: true });
    for (const lib of sharedLibraries(process.execPath)) {
      const real = fs.realpathSync(lib);
      fs.mkdirSync(path.join(rootfs, path.dirname(lib)), { recursive: true });
      fs.copyFileSync(real, path.join(rootfs, lib));
    }
    fs.rmSync(out, { recursive: true, force: true });
    await writeOciLayout({
      rootfs,
      out,
      name,
      config: {
        Env: [`PATH=${CUR}/node_modules/.bin:/usr/local/bin:/usr/bin:/bin`],
        Entrypoint: [`${CUR}/node`, `${CUR}/dist/src/install/host-install.js`],
        Cmd: ['install', '--root', '/host', '--from', `${BUNDLE_DIR}/current`],
        Labels: { 'org.opencontainers.image.title': 'sandlot installer', 'org.opencontainers.image.version': packageVersion() },
      },
    });
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

// Real paths: the bundle is run through its `current` symlink.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)) {
  const [out, name] = process.argv.slice(2);
  if (!out) {
    process.stderr.write('usage: build-image OUT_DIR [NAME]\n');
    process.exit(2);
  }
  buildImage(path.resolve(out), name).then(
    () => process.stdout.write(`wrote ${name ?? IMAGE_NAME} to ${out}\n`),
    (e: unknown) => {
      process.stderr.write(`build-image: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
