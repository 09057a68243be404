// CheckpointContainer: validated here (container_id, an absolute `location` without
// "..", a non-negative timeout in seconds); the work and its refusals (NOT_FOUND, S4
// state, UNIMPLEMENTED without a working CRIU) are src/sandbox/container/checkpoint.ts's.
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { CHECKPOINT_DEFAULT_TIMEOUT_MS, type ContainerCheckpointer } from '../sandbox/container/checkpoint.js';
import type { CheckpointContainerRequest } from '../types/cri/runtime/v1/CheckpointContainerRequest.js';
import type { HandlerSet } from './handler-types.js';

export function parseCheckpointContainer(req: CheckpointContainerRequest): { id: string; location: string; timeoutMs: number } {
  const id = req.container_id;
  if (typeof id !== 'string' || id === '') throw new InvalidArgumentError('container_id is required');
  if (id.includes('/') || id.includes('..') || id.includes('\0')) throw new InvalidArgumentError(`container_id "${id}" must not contain "/", ".." or NUL`);
  const location = String(req.location ?? '');
  if (location === '') throw new InvalidArgumentError('location is required');
  if (!path.isAbsolute(location) || location.split('/').includes('..') || location.includes('\0')) {
    throw new InvalidArgumentError(`location "${location}" must be an absolute path without ".."`);
  }
  const seconds = Number(req.timeout ?? 0);
  if (!Number.isSafeInteger(seconds) || seconds < 0)
    throw new InvalidArgumentError(`timeout ${JSON.stringify(req.timeout)} must be a non-negative number of seconds`);
  return { id, location, timeoutMs: seconds > 0 ? seconds * 1000 : CHECKPOINT_DEFAULT_TIMEOUT_MS };
}

export function checkpointHandlers(checkpointer: ContainerCheckpointer): HandlerSet {
  return {
    unary: {
      async CheckpointContainer(req) {
        const { id, location, timeoutMs } = parseCheckpointContainer(req);
        await checkpointer.checkpoint(id, location, timeoutMs);
        return {};
      },
    },
  };
}
