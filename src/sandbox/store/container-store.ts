// Container metadata: <root_dir>/containers/<id>/meta.json, beside the image service's
// rootfs/ and overlay/ of the same container (so only the store's own files are its).
import path from 'node:path';
import { CONTAINER_ID_RE, type ContainerRecord } from '../container/container.js';
import { MetadataStore } from './metadata-store.js';

export class ContainerStore extends MetadataStore<ContainerRecord> {
  constructor(options: { rootDir: string }) {
    super({
      dir: path.join(options.rootDir, 'containers'),
      kind: 'container',
      plural: 'containers',
      idPattern: CONTAINER_ID_RE,
      ownsDirectory: false,
    });
  }

  ofPod(podId: string): ContainerRecord[] {
    return this.list().filter((r) => r.podId === podId);
  }
}
