// runtime.v1.ImageService: request validation and the CRI shapes of image records.
// Business logic lives in src/image/image-service.ts.
import { InvalidArgumentError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { ImageRecord } from '../image/image-store.js';
import type { CriAuthConfig } from '../image/registry-auth.js';
import { isDigest, isHexId, parseReference } from '../image/reference.js';
import type { AuthConfig } from '../types/cri/runtime/v1/AuthConfig.js';
import type { Image } from '../types/cri/runtime/v1/Image.js';
import type { ImageFilter } from '../types/cri/runtime/v1/ImageFilter.js';
import type { ImageSpec } from '../types/cri/runtime/v1/ImageSpec.js';
import { answer, type HandlerSet } from './handler-types.js';

/** Images per StreamImages message. */
export const STREAM_IMAGES_PAGE_SIZE = 100;

/** The image field as a checked string: an ID or a parseable reference. */
export function imageField(spec: ImageSpec | null | undefined, field: string, required: boolean): string | undefined {
  const v: unknown = spec?.image;
  if (v === undefined || v === null || v === '') {
    if (required) throw new InvalidArgumentError(`${field} must not be empty`);
    return undefined;
  }
  if (typeof v !== 'string') throw new InvalidArgumentError(`${field} must be a string, got ${JSON.stringify(v)}`);
  if (isDigest(v) || isHexId(v)) return v;
  try {
    parseReference(v);
  } catch (e) {
    throw new InvalidArgumentError(`${field}: ${(e as Error).message}`, { cause: e });
  }
  return v;
}

/**
 * uid or username from the config's User (`uid`, `uid:gid`, `name`, `name:group`),
 * as the kubelet wants them for runAsNonRoot checks.
 */
export function imageUser(user: string | undefined): { uid: { value: string } | null; username: string } {
  const u = (user ?? '').split(':')[0] ?? '';
  if (u === '') return { uid: null, username: '' };
  if (/^\d+$/.test(u)) return { uid: { value: u }, username: '' };
  return { uid: null, username: u };
}

export function toCriImage(rec: ImageRecord): Image {
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: String(rec.size),
    ...imageUser(rec.config.config.User),
    spec: { image: rec.id, annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: rec.id },
    pinned: rec.pinned,
  };
}

/** The `auth` field of PullImage and sandlot.v1.Images/PullWithProgress. */
export function authConfig(req: { auth?: AuthConfig | null }): CriAuthConfig | undefined {
  const a = req.auth;
  if (!a) return undefined;
  const out: CriAuthConfig = {};
  for (const k of ['username', 'password', 'auth', 'server_address', 'identity_token', 'registry_token'] as const) {
    const v: unknown = a[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw new InvalidArgumentError(`auth.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

export function imageHandlers(images: ImageService): HandlerSet {
  const list = (req: { filter?: ImageFilter | null }): ImageRecord[] => images.list(imageField(req.filter?.image, 'filter.image.image', false));
  return {
    unary: {
      async PullImage(req, ctx) {
        const ref = imageField(req.image, 'image.image', true)!;
        if (isDigest(ref) || isHexId(ref)) throw new InvalidArgumentError(`image.image ${JSON.stringify(ref)}: an image ID cannot be pulled; give a reference`);
        const rec = await images.pull(ref, authConfig(req), { signal: ctx.signal });
        return { image_ref: rec.id };
      },
      ImageStatus(req) {
        return answer(() => {
          const ref = imageField(req.image, 'image.image', true)!;
          const rec = images.status(ref);
          // CRI: an image that is not present is a nil image, not an error.
          if (!rec) return { image: null, info: {} };
          const info: Record<string, string> = {};
          if (req.verbose === true) {
            info.info = JSON.stringify({
              id: rec.id,
              manifestDigest: rec.manifestDigest,
              chainIds: rec.layers.map((l) => l.chainId),
              imageSpec: rec.config,
            });
          }
          return { image: toCriImage(rec), info };
        });
      },
      ListImages(req) {
        return answer(() => ({ images: list(req).map(toCriImage) }));
      },
      async RemoveImage(req) {
        await images.remove(imageField(req.image, 'image.image', true)!);
        return {};
      },
      async ImageFsInfo() {
        const u = await images.fsInfo();
        const usage = {
          timestamp: String(u.timestampNs),
          fs_id: { mountpoint: u.mountpoint },
          used_bytes: { value: String(u.usedBytes) },
          inodes_used: { value: String(u.inodesUsed) },
        };
        return { image_filesystems: [usage], container_filesystems: [] };
      },
    },
    stream: {
      *StreamImages(req) {
        const all = list(req).map(toCriImage);
        for (let i = 0; i < all.length; i += STREAM_IMAGES_PAGE_SIZE) {
          yield { images: all.slice(i, i + STREAM_IMAGES_PAGE_SIZE) };
        }
        if (all.length === 0) yield { images: [] };
      },
    },
  };
}
