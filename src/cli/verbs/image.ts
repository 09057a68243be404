// pull, images, inspecti, imagefsinfo, rmi, image import: the image verbs. Listing and removal speak CRI;
// a pull on a terminal and every import use sandlot.v1.Images (api/sandlot.proto),
// which the daemon serves on the same socket, so all writes go through the daemon and
// its store lock.
import { credentials, Metadata } from '@grpc/grpc-js';
import cliProgress from 'cli-progress';
import path from 'node:path';
import { loadSandlotImagesClient } from '../../cri/sandlot-images.js';
import type { CriClient } from '../client.js';
import type { RequestInputOf, ResponseOutputOf } from '../../cri/handler-types.js';
import type { ImagesClient } from '../../types/cri/sandlot/v1/Images.js';
import type { ImportResponse__Output } from '../../types/cri/sandlot/v1/ImportResponse.js';
import { formatDoc, outputFormat } from '../output.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  OUTPUT_OPTION,
  SOCKET_OPTION,
  socketOf,
  table,
  UsageError,
  withClient,
  type Verb,
  type VerbValues,
} from '../verb.js';
import { parseInfo } from './pod.js';

/** A pull or import of a large image may take long; the daemon's own timeouts apply within. */
export const PULL_TIMEOUT_MS = 60 * 60_000;
const LIST_TIMEOUT_MS = 30_000;

/** Sizes as crictl prints them (go-units HumanSizeWithPrecision(n, 3)): 1.24MB, 512B. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** The rows of `sandlot images`: one per repo tag, `<none>` where there is none. */
/** The fields of a decoded CRI Image the rows read (the unit tests build only these). */
export interface ImageRowItem {
  id: string;
  size: string | number;
  repo_tags: string[];
  repo_digests: string[];
}

type PullRequest = RequestInputOf<'PullImage'>;
type PullEventOut = ResponseOutputOf<'PullWithProgress'>;

export function imageRows(images: ImageRowItem[]): string[][] {
  const rows: string[][] = [];
  for (const img of images) {
    const id = img.id.replace(/^sha256:/, '').slice(0, 12);
    const size = humanSize(Number(img.size));
    const tags = img.repo_tags;
    if (tags.length === 0) {
      const digestRef: string | undefined = img.repo_digests[0];
      rows.push([digestRef ? digestRef.split('@')[0] : '<none>', '<none>', id, size]);
      continue;
    }
    for (const t of tags) {
      const colon = t.lastIndexOf(':');
      const repo = colon > t.lastIndexOf('/') ? t.slice(0, colon) : t;
      const tag = colon > t.lastIndexOf('/') ? t.slice(colon + 1) : '<none>';
      rows.push([repo, tag, id, size]);
    }
  }
  // By name then tag (like crictl), untagged images last.
  const key = (r: string[]): string => `${r[0] === '<none>' ? '\uffff' : r[0]}\u0000${r[1] === '<none>' ? '\uffff' : r[1]}`;
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function parseCreds(v: VerbValues[string]): PullRequest['auth'] {
  if (v === undefined) return undefined;
  const s = String(v);
  const colon = s.indexOf(':');
  if (colon <= 0) throw new Error(`--creds ${JSON.stringify(s.replace(/:.*/, ':…'))}: expected USER:PASSWORD`);
  return { username: s.slice(0, colon), password: s.slice(colon + 1) };
}

async function withSandlotClient<T>(values: VerbValues, fn: (c: ImagesClient) => Promise<T>): Promise<T> {
  const Ctor = loadSandlotImagesClient();
  const client = new Ctor(`unix://${socketOf(values)}`, credentials.createInsecure());
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

interface LayerView {
  bar: cliProgress.SingleBar;
  startedAt: number;
  bytes: number;
}

/** One bar per layer: compressed bytes verified into the content store, and their average rate. */
class LayerBars {
  private readonly multi = new cliProgress.MultiBar(
    {
      stream: process.stdout,
      format: '{layer} [{bar}] {done}/{size} {rate} {phase}',
      barsize: 30,
      hideCursor: true,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  private readonly layers = new Map<string, LayerView>();

  update(ev: { digest: string; bytes: string; total: string; phase: string }): void {
    const total = Number(ev.total);
    const bytes = Number(ev.bytes);
    let v = this.layers.get(ev.digest);
    if (!v) {
      const bar = this.multi.create(total, 0, {
        layer: ev.digest.replace(/^sha256:/, '').slice(0, 12),
        done: '0B',
        size: humanSize(total),
        rate: '',
        phase: '',
      });
      v = { bar, startedAt: Date.now(), bytes: 0 };
      this.layers.set(ev.digest, v);
    }
    const fresh = ev.phase === 'downloading' && bytes > v.bytes;
    v.bytes = bytes;
    const secs = (Date.now() - v.startedAt) / 1000;
    const payload: Record<string, string> = { done: humanSize(bytes), phase: ev.phase };
    // A layer already in the store arrives complete at once: no rate to show.
    if (fresh && secs > 0) payload.rate = `${humanSize(bytes / secs)}/s`;
    v.bar.update(bytes, payload);
  }

  stop(): void {
    this.multi.stop();
  }
}

async function pullWithBars(values: VerbValues, req: PullRequest): Promise<string> {
  return withSandlotClient(values, async (client) => {
    const bars = new LayerBars();
    try {
      const call = client.PullWithProgress(req, new Metadata(), { deadline: new Date(Date.now() + PULL_TIMEOUT_MS) });
      let ref = '';
      // A Readable iterates as any; each message is what the call decodes.
      for await (const ev of call as AsyncIterable<PullEventOut>) {
        if (ev.layer) bars.update(ev.layer);
        if (ev.image_ref) ref = ev.image_ref;
      }
      if (!ref) throw new Error('the daemon ended the pull without an image reference');
      return ref;
    } finally {
      bars.stop();
    }
  });
}

export const pullVerb: Verb = {
  name: 'pull',
  summary: 'pull an image through the daemon (a progress bar per layer on a terminal)',
  usage: 'REF',
  options: { ...SOCKET_OPTION, creds: { type: 'string', value: 'USER:PASSWORD', description: 'registry credentials for this pull' } },
  async run(values, positionals) {
    if (positionals.length !== 1) {
      process.stderr.write('usage: sandlot pull [--socket PATH] [--creds USER:PASSWORD] REF\n');
      return EXIT_USAGE;
    }
    const auth = parseCreds(values.creds);
    const name = positionals[0];
    const req: PullRequest = { image: { image: name }, ...(auth ? { auth } : {}) };
    // What the daemon had under this name before: the same ID after the pull means nothing new came.
    const before = await withClient(values, (c) => c.imageCall('ImageStatus', { image: { image: name } }, { timeoutMs: LIST_TIMEOUT_MS })).catch(
      (): Partial<ResponseOutputOf<'ImageStatus'>> => ({}),
    );
    const ref = process.stdout.isTTY
      ? await pullWithBars(values, req)
      : (await withClient(values, (c) => c.imageCall('PullImage', req, { timeoutMs: PULL_TIMEOUT_MS }))).image_ref;
    const same = before.image?.id !== undefined && before.image.id === ref;
    process.stdout.write(same ? `Image is up to date for ${name}: ${ref}\n` : `Downloaded newer image for ${name}: ${ref}\n`);
    return EXIT_OK;
  },
};

export const imagesVerb: Verb = {
  name: 'images',
  summary: 'list images (IMAGE, TAG, IMAGE ID, SIZE), optionally only those matching REF',
  usage: '[REF]',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION, quiet: { type: 'boolean', short: 'q', description: 'print image IDs only' } },
  async run(values, positionals) {
    const format = outputFormat(values, 'table');
    const filter = positionals[0] ? { filter: { image: { image: positionals[0] } } } : {};
    const res = await withClient(values, (c) => c.imageCall('ListImages', filter, { timeoutMs: LIST_TIMEOUT_MS }));
    const images = res.images;
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, { images }));
      return EXIT_OK;
    }
    if (values.quiet) {
      for (const img of images) process.stdout.write(`${img.id}\n`);
      return EXIT_OK;
    }
    process.stdout.write(table(['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'], imageRows(images)));
    return EXIT_OK;
  },
};

/**
 * Removes what `ref` names (the daemon untags when the image keeps other tags) and
 * says what really went: `Untagged: <tag>` for each tag taken off, and
 * `Deleted: <id>` only when the image itself is gone.
 */
async function removeOne(c: CriClient, ref: string): Promise<{ problem?: string; lines: string[] }> {
  const before = await c.imageCall('ImageStatus', { image: { image: ref } }, { timeoutMs: LIST_TIMEOUT_MS });
  if (!before.image) return { problem: `image "${ref}" not found`, lines: [] };
  const id = before.image.id;
  const tagsBefore = before.image.repo_tags;
  // The reference itself, not the ID: removing by ID would take every tag with it.
  await c.imageCall('RemoveImage', { image: { image: ref } }, { timeoutMs: LIST_TIMEOUT_MS });
  const after = await c.imageCall('ImageStatus', { image: { image: id } }, { timeoutMs: LIST_TIMEOUT_MS });
  if (after.image) {
    const tagsAfter = new Set(after.image.repo_tags);
    return { lines: tagsBefore.filter((t) => !tagsAfter.has(t)).map((t) => `Untagged: ${t}`) };
  }
  return { lines: [...tagsBefore.map((t) => `Untagged: ${t}`), `Deleted: ${id}`] };
}

export const rmiVerb: Verb = {
  name: 'rmi',
  summary: 'remove images by reference or ID (their unused layers are garbage-collected)',
  usage: 'REF...',
  options: SOCKET_OPTION,
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('usage: sandlot rmi [--socket PATH] REF...\n');
      return EXIT_USAGE;
    }
    let code = EXIT_OK;
    await withClient(values, async (c) => {
      for (const ref of positionals) {
        let problem: string | undefined;
        let lines: string[] = [];
        try {
          ({ problem, lines } = await removeOne(c, ref));
        } catch (e) {
          const details = (e as { details?: unknown }).details;
          problem = typeof details === 'string' && details ? details : String(e);
        }
        for (const l of lines) process.stdout.write(`${l}\n`);
        if (problem) {
          process.stderr.write(`sandlot rmi: ${problem}\n`);
          code = EXIT_FAILURE;
        }
      }
    });
    return code;
  },
};

export const imageVerb: Verb = {
  name: 'image',
  summary: 'image import PATH: load an OCI layout dir, oci-archive or docker-archive through the daemon',
  usage: 'import PATH',
  options: { ...SOCKET_OPTION, name: { type: 'string', value: 'REF', description: 'tag the imported image with REF' } },
  async run(values, positionals) {
    const [sub, p, ...extra] = positionals;
    if (sub !== 'import' || p === undefined || extra.length > 0) {
      process.stderr.write('usage: sandlot image import [--socket PATH] [--name REF] PATH\n');
      return EXIT_USAGE;
    }
    // The daemon reads the path itself: send it absolute, resolved here.
    const req = { path: path.resolve(p), name: values.name === undefined ? '' : String(values.name) };
    const res = await withSandlotClient(
      values,
      (c) =>
        new Promise<ImportResponse__Output>((resolve, reject) => {
          c.Import(req, new Metadata(), { deadline: new Date(Date.now() + PULL_TIMEOUT_MS) }, (err, r) =>
            err ? reject(err) : r ? resolve(r) : reject(new Error('the daemon answered the import with nothing')),
          );
        }),
    );
    for (const img of res.images) {
      const tags = img.repo_tags;
      process.stdout.write(`Imported ${tags.length > 0 ? tags.join(', ') : img.id} (${img.id})\n`);
    }
    return EXIT_OK;
  },
};

export const inspectiVerb: Verb = {
  name: 'inspecti',
  summary: "show an image's status and its config (ImageStatus verbose) as JSON",
  usage: 'IMAGE',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('expected one IMAGE (reference or ID)');
    const format = outputFormat(values, 'json');
    const res = await withClient(values, (c) =>
      c.imageCall('ImageStatus', { image: { image: positionals[0] }, verbose: true }, { timeoutMs: LIST_TIMEOUT_MS }),
    );
    if (!res.image) throw new Error(`image "${positionals[0]}" not found`);
    if (format === 'table') {
      process.stdout.write(table(['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'], imageRows([res.image])));
      return EXIT_OK;
    }
    process.stdout.write(formatDoc(format, { status: res.image, info: parseInfo(res.info) }));
    return EXIT_OK;
  },
};

export const imageFsInfoVerb: Verb = {
  name: 'imagefsinfo',
  summary: 'show the image filesystem: mount point, bytes and inodes used',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION },
  async run(values) {
    const format = outputFormat(values, 'table');
    const res = await withClient(values, (c) => c.imageCall('ImageFsInfo', {}, { timeoutMs: LIST_TIMEOUT_MS }));
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, res));
      return EXIT_OK;
    }
    const rows = [...res.image_filesystems.map((f) => ['image', f] as const), ...res.container_filesystems.map((f) => ['container', f] as const)].map(
      ([kind, fs]) => [kind, fs.fs_id?.mountpoint ?? '', humanSize(Number(fs.used_bytes?.value ?? 0)), fs.inodes_used?.value ?? ''],
    );
    process.stdout.write(table(['FILESYSTEM', 'MOUNTPOINT', 'USED', 'INODES'], rows));
    return EXIT_OK;
  },
};
