// Sandbox metadata: <root_dir>/pods/<id>/meta.json, the directory the pod's alone.
import path from 'node:path';
import { MetadataStore } from './metadata-store.js';
import { SANDBOX_ID_RE, type SandboxRecord } from '../pod/sandbox.js';

export class SandboxStore extends MetadataStore<SandboxRecord> {
  constructor(options: { rootDir: string }) {
    super({ dir: path.join(options.rootDir, 'pods'), kind: 'sandbox', plural: 'sandboxes', idPattern: SANDBOX_ID_RE, ownsDirectory: true });
  }
}
