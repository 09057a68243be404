// Where a pull reads manifests and blobs from: a registry, or local files (an OCI
// layout directory, or the blobs of an unpacked docker-archive). The puller verifies
// everything it reads, whichever the source.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { NotFoundError, errnoCode } from '../errors.js';
import { checkDigest, digestHex } from './digest.js';
import type { BlobLocation } from './layer-job.js';
import { MANIFEST_SIZE_MAX_BYTES } from './manifest.js';
import type { RegistryCredentials } from './registry-auth.js';
import type { RegistryClient } from './registry-client.js';
import type { ImageReference } from './reference.js';

export interface FetchedDocument {
  bytes: Buffer;
  contentType: string;
  /** A digest the source claims for it (registry header), checked by the puller. */
  claimedDigest?: string | undefined;
}

export interface ImageSource {
  /** For messages: `registry "host"` or `OCI layout "/path"`. */
  readonly describe: string;
  fetchManifest(tagOrDigest: string, signal?: AbortSignal): Promise<FetchedDocument>;
  openBlob(digest: string, signal?: AbortSignal): Promise<Readable>;
  /**
   * Where a layer worker reads the blob from (layer-job.ts). A registry status it
   * gets there (BlobStatusError) sends the layer back to openBlob in this thread.
   */
  locateBlob(digest: string): Promise<BlobLocation>;
}

export class RegistrySource implements ImageSource {
  readonly describe: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: ImageReference,
    private readonly creds: RegistryCredentials | undefined,
  ) {
    this.describe = `registry "${ref.domain}"`;
  }

  async fetchManifest(tagOrDigest: string, signal?: AbortSignal): Promise<FetchedDocument> {
    const m = await this.client.getManifest(this.ref, tagOrDigest, this.creds, signal);
    return { bytes: m.bytes, contentType: m.contentType, claimedDigest: m.headerDigest };
  }

  openBlob(digest: string, signal?: AbortSignal): Promise<Readable> {
    return this.client.openBlob(this.ref, digest, this.creds, signal);
  }

  locateBlob(digest: string): Promise<BlobLocation> {
    return Promise.resolve(this.client.blobLocation(this.ref, digest, this.creds));
  }
}

/**
 * Blobs stored as files: an OCI layout (`blobs/sha256/<hex>`), or any digest → file
 * map. Manifests are looked up by digest only.
 */
export class FileSource implements ImageSource {
  constructor(
    readonly describe: string,
    private readonly locate: (digest: string) => string,
  ) {}

  static ociLayout(dir: string): FileSource {
    const describe = `OCI layout "${dir}"`;
    return new FileSource(describe, (d) => path.join(dir, 'blobs', 'sha256', digestHex(checkDigest(d, describe))));
  }

  async fetchManifest(digest: string): Promise<FetchedDocument> {
    const file = this.locate(digest);
    try {
      const st = await fsp.stat(file);
      if (st.size > MANIFEST_SIZE_MAX_BYTES) throw new NotFoundError(`${this.describe}: manifest ${digest} too large`);
      return { bytes: await fsp.readFile(file), contentType: '' };
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${this.describe}: manifest ${digest} not found`);
      throw e;
    }
  }

  async openBlob(digest: string): Promise<Readable> {
    return fs.createReadStream(await this.existing(digest));
  }

  async locateBlob(digest: string): Promise<BlobLocation> {
    return { kind: 'file', path: await this.existing(digest) };
  }

  private async existing(digest: string): Promise<string> {
    const file = this.locate(digest);
    try {
      await fsp.access(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${this.describe}: blob ${digest} not found`);
      throw e;
    }
    return file;
  }
}
