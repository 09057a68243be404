// sandlot.v1.Images (api/sandlot.proto): what the `sandlot` CLI needs beyond CRI.
// PullWithProgress streams per-layer progress of the same pull PullImage runs;
// Import makes the daemon read an image archive from its own filesystem, so imports
// go through the daemon's store lock like every other write.
import { makeClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { PullProgress } from '../image/puller.js';
import { isDigest, isHexId, parseReference } from '../image/reference.js';
import type { ProtoGrpcType } from '../types/cri/sandlot.js';
import type { PullEvent } from '../types/cri/sandlot/v1/PullEvent.js';
import type { HandlerSet } from './handler-types.js';
import { authConfig, imageField } from './image-handlers.js';
import { loadApiServices } from './proto.js';

/** Progress of one layer in one phase is sent at most this often. */
export const PROGRESS_INTERVAL_MS = 100;

/** A gRPC service the server registers beside the CRI ones. */
export interface ExtraService {
  /** Short name for logs, metrics and spans. */
  name: string;
  definition: ServiceDefinition;
  handlers: HandlerSet;
}

/** The client constructor of sandlot.v1.Images (typed ImagesClient), for the CLI and tests. */
export function loadSandlotImagesClient(): ProtoGrpcType['sandlot']['v1']['Images'] {
  return makeClientConstructor(loadApiServices().SandlotImages, 'Images') as unknown as ProtoGrpcType['sandlot']['v1']['Images'];
}

/** Drops progress events that come faster than PROGRESS_INTERVAL_MS per layer and phase. */
export class ProgressThrottle {
  private readonly last = new Map<string, { at: number; phase: string }>();

  constructor(private readonly now: () => number = Date.now) {}

  admit(p: PullProgress): boolean {
    const prev = this.last.get(p.layer);
    const t = this.now();
    const final = p.bytes >= p.total;
    if (prev && prev.phase === p.phase && !final && t - prev.at < PROGRESS_INTERVAL_MS) return false;
    this.last.set(p.layer, { at: t, phase: p.phase });
    return true;
  }
}

function sandlotImagesHandlers(images: ImageService): HandlerSet {
  return {
    unary: {
      async Import(req) {
        const p: unknown = req.path;
        if (typeof p !== 'string' || p === '') throw new InvalidArgumentError('path must not be empty');
        if (!path.isAbsolute(p)) throw new InvalidArgumentError(`path ${JSON.stringify(p)} must be absolute (the daemon resolves no working directory)`);
        const name: unknown = req.name;
        if (name !== undefined && name !== '' && typeof name === 'string') {
          try {
            parseReference(name);
          } catch (e) {
            throw new InvalidArgumentError(`name: ${(e as Error).message}`, { cause: e });
          }
        }
        const recs = await images.importArchive(p, typeof name === 'string' && name !== '' ? { name } : {});
        return { images: recs.map((r) => ({ id: r.id, repo_tags: r.repoTags })) };
      },
    },
    stream: {
      async *PullWithProgress(req, ctx) {
        const ref = imageField(req.image, 'image.image', true)!;
        if (isDigest(ref) || isHexId(ref)) throw new InvalidArgumentError(`image.image ${JSON.stringify(ref)}: an image ID cannot be pulled; give a reference`);
        const auth = authConfig(req);
        const queue: PullEvent[] = [];
        let outcome: { id: string } | { err: unknown } | undefined;
        let wake: (() => void) | undefined;
        const throttle = new ProgressThrottle();
        images
          .pull(ref, auth, {
            signal: ctx.signal,
            onProgress: (p) => {
              if (!throttle.admit(p)) return;
              queue.push({ layer: { digest: p.layer, bytes: String(p.bytes), total: String(p.total), phase: p.phase } });
              wake?.();
            },
          })
          .then(
            (rec) => (outcome = { id: rec.id }),
            (e: unknown) => (outcome = { err: e }),
          )
          .finally(() => wake?.());
        for (;;) {
          while (queue.length > 0) yield queue.shift()!;
          if (outcome) break;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
        if ('err' in outcome) throw outcome.err;
        yield { image_ref: outcome.id };
      },
    },
  };
}

/** sandlot.v1.Images over `images`, for CriServerOptions.extraServices. */
export function sandlotImagesService(images: ImageService, definition: ServiceDefinition = loadApiServices().SandlotImages): ExtraService {
  return { name: 'sandlot.v1.Images', definition, handlers: sandlotImagesHandlers(images) };
}
