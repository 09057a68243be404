// The rows of `sandlot pods` and `sandlot ps`, from CRI list items (crictl's columns).
import { timeAgo } from './human-time.js';

/** IDs in tables are cut to 13 characters, as crictl does. */
export const SHORT_ID_CHARS = 13;

export const POD_HEADER = ['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME'];
export const CONTAINER_HEADER = ['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID'];

export function shortId(id: string | null | undefined): string {
  return (id ?? '').slice(0, SHORT_ID_CHARS);
}

/** SANDBOX_READY → Ready, CONTAINER_RUNNING → Running, as crictl prints states. */
export function stateWord(state: string | null | undefined): string {
  const s = (state ?? '').replace(/^(SANDBOX|CONTAINER)_/, '');
  if (s === 'NOTREADY') return 'NotReady';
  return s.charAt(0) + s.slice(1).toLowerCase();
}

/** Image ID → its first repo tag, from ListImages (crictl resolves IDs the same way). */
export type ImageNames = ReadonlyMap<string, string>;

// The fields the tables read of decoded CRI list items (PodSandbox__Output, Container__Output
// and Image__Output fit; the unit tests build only these).
interface CreatedItem {
  created_at?: string | number;
}
export interface PodItem extends CreatedItem {
  id?: string;
  state?: string;
  metadata?: { name?: string; namespace?: string; attempt?: number } | null;
  runtime_handler?: string;
}
export interface ContainerItem extends CreatedItem {
  id?: string;
  pod_sandbox_id?: string;
  state?: string;
  image?: { image?: string; user_specified_image?: string } | null;
  image_ref?: string;
  metadata?: { name?: string; attempt?: number } | null;
}
export interface ImageItem {
  id?: string;
  repo_tags?: string[];
}

export function imageNames(images: ImageItem[]): ImageNames {
  const m = new Map<string, string>();
  for (const img of images) {
    const tag = (img.repo_tags ?? [])[0];
    if (tag) m.set(String(img.id ?? ''), tag);
  }
  return m;
}

/** The image a person recognizes: a name over an ID, a short ID over a long one. */
export function imageWord(c: ContainerItem, names: ImageNames = new Map()): string {
  const image = String(c.image?.user_specified_image || c.image?.image || c.image_ref || '');
  const bare = image.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(bare)) return image;
  return names.get(`sha256:${bare}`) ?? names.get(bare) ?? bare.slice(0, SHORT_ID_CHARS);
}

function byCreatedDesc(a: CreatedItem, b: CreatedItem): number {
  const x = BigInt(a.created_at ?? 0);
  const y = BigInt(b.created_at ?? 0);
  return x === y ? 0 : x < y ? 1 : -1;
}

/** Newest first, as crictl lists. */
export function newestFirst<T extends CreatedItem>(items: T[]): T[] {
  return [...items].sort(byCreatedDesc);
}

export function podRows(items: PodItem[], nowMs: number): string[][] {
  return newestFirst(items).map((p) => [
    shortId(p.id),
    timeAgo(p.created_at ?? 0, nowMs),
    stateWord(p.state),
    String(p.metadata?.name ?? ''),
    String(p.metadata?.namespace ?? ''),
    String(p.metadata?.attempt ?? 0),
    String(p.runtime_handler || '(default)'),
  ]);
}

export function containerRows(items: ContainerItem[], nowMs: number, names: ImageNames = new Map()): string[][] {
  return newestFirst(items).map((c) => [
    shortId(c.id),
    imageWord(c, names),
    timeAgo(c.created_at ?? 0, nowMs),
    stateWord(c.state),
    String(c.metadata?.name ?? ''),
    String(c.metadata?.attempt ?? 0),
    shortId(c.pod_sandbox_id),
  ]);
}

/** `k=v` flags into a label selector; a flag without "=" names the flag and value. */
export function parseLabels(flag: string, values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} ${JSON.stringify(v)}: expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}
