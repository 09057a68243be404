// A minimal OCI bundle whose process is the host's catatonit, bind-mounted read-only:
// the container the runtime and conmon tests create, start, signal and delete.
import fs from 'node:fs';
import path from 'node:path';

export interface CatatonitBundleOptions {
  cgroupsPath: string;
  annotations?: Record<string, string>;
}

/** Writes `bundle` (its rootfs and config.json); returns the bundle path. */
export function writeCatatonitBundle(bundle: string, options: CatatonitBundleOptions): string {
  const rootfs = path.join(bundle, 'rootfs');
  for (const d of ['proc', 'dev', 'sys']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'catatonit'), '');
  const config = {
    ociVersion: '1.0.2',
    process: { user: { uid: 0, gid: 0 }, args: ['/catatonit', '-P'], cwd: '/', env: ['PATH=/'] },
    root: { path: 'rootfs', readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/catatonit', type: 'bind', source: '/usr/bin/catatonit', options: ['rbind', 'ro'] },
    ],
    ...(options.annotations ? { annotations: options.annotations } : {}),
    linux: { cgroupsPath: options.cgroupsPath, namespaces: ['pid', 'ipc', 'uts', 'mount'].map((type) => ({ type })) },
  };
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}
