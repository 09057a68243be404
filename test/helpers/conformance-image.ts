// The image of the conformance tests, built as an OCI layout the daemon preloads:
// busybox with its applets hard-linked (the layout writer stores each as a file of its
// own, as such an image unpacks; not symlinks, so a runtime that resolves argv[0] or
// /proc/self/exe wrongly shows up), account files with a user in several
// groups, and `/bin/euid`, a setuid-root program that prints its real and effective uid.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOciLayout } from '../../src/image/oci-layout-writer.js';
import { buildGo } from './go-build.js';

export const CONFORMANCE_IMAGE = 'docker.io/sandlot/conformance:latest';
/** The image's non-root user and its groups by /etc/group (primary 1000). */
export const APP_USER = { name: 'app', uid: 1000, gid: 1000, memberOf: [44, 29] };

const APPLETS = ['sh', 'cat', 'echo', 'sleep', 'id', 'hostname', 'tty', 'grep', 'readlink', 'ls'];

let cached: string | undefined;

/** Writes the layout once per test process; returns its directory. */
export async function conformanceLayout(): Promise<string> {
  if (cached && fs.existsSync(cached)) return cached;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-conformance-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  const rootfs = path.join(tmp, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'home/app']) fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.linkSync(path.join(rootfs, 'bin', 'busybox'), path.join(rootfs, 'bin', a));
  const euid = buildGo(path.join(path.dirname(fileURLToPath(import.meta.url)), 'euid-go'), 'euid');
  fs.copyFileSync(euid, path.join(rootfs, 'bin', 'euid'));
  // The layout writer stores every file as root's, keeping the mode bits: setuid root.
  fs.chmodSync(path.join(rootfs, 'bin', 'euid'), 0o4755);
  fs.writeFileSync(
    path.join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  // /etc/group lists the app's groups out of numeric order on purpose.
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nvideo:x:44:app\nusers:x:100:\naudio:x:29:other,app\napp:x:1000:app\nnobody:x:65534:\n');
  const out = path.join(tmp, 'layout');
  await writeOciLayout({
    rootfs,
    out,
    name: CONFORMANCE_IMAGE,
    config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
  });
  cached = out;
  return out;
}
