// Follows a CRI log file as the container writes it: records go to `onRecord` as they
// arrive; the follow ends once `isDone` says the writer has finished and every byte
// written before that has been read. A file rotated away (kubelet's ReopenContainerLog)
// or truncated is read again from its start.
import fsp, { type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from '../errors.js';
import { CriLogDecoder, type CriLogRecord } from './cri-log.js';

export const LOG_POLL_MS = 100;
const READ_CHUNK_BYTES = 64 * 1024;

export interface FollowLogOptions {
  path: string;
  onRecord: (rec: CriLogRecord) => void;
  /** True once nothing more will be written (the container exited). */
  isDone: () => Promise<boolean>;
  /** Ends the follow early (Ctrl-C). */
  signal?: AbortSignal;
  pollMs?: number;
  /** Where to start in the file first opened (bytes already shown). */
  startOffset?: number;
}

async function openIfThere(p: string): Promise<FileHandle | undefined> {
  try {
    return await fsp.open(p, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export async function followCriLog(opts: FollowLogOptions): Promise<void> {
  const pollMs = opts.pollMs ?? LOG_POLL_MS;
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let fh: FileHandle | undefined;
  let ino = 0;
  let offset = 0;
  let firstOpen = true;
  let decoder = new CriLogDecoder();
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      if (!fh) {
        fh = await openIfThere(opts.path);
        if (fh) {
          ino = (await fh.stat()).ino;
          offset = firstOpen ? (opts.startOffset ?? 0) : 0;
          firstOpen = false;
          decoder = new CriLogDecoder();
        }
      }
      let got = 0;
      if (fh) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        got = bytesRead;
        if (bytesRead > 0) {
          offset += bytesRead;
          for (const rec of decoder.push(buf.subarray(0, bytesRead))) opts.onRecord(rec);
          continue;
        }
        const st = await fsp.stat(opts.path).catch(() => undefined);
        if (st && (st.ino !== ino || st.size < offset)) {
          await fh.close();
          fh = undefined;
          continue;
        }
      }
      if (got === 0) {
        // Ask only at EOF, and read once more after "done": the last writes land before the exit.
        if (await opts.isDone()) {
          if (fh) {
            for (;;) {
              const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
              if (bytesRead === 0) break;
              offset += bytesRead;
              for (const rec of decoder.push(buf.subarray(0, bytesRead))) opts.onRecord(rec);
            }
            // A last record without its newline is still output.
            for (const rec of decoder.push(decoder.pendingBytes > 0 ? Buffer.from('\n') : Buffer.alloc(0))) opts.onRecord(rec);
          }
          return;
        }
        await sleep(pollMs, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
      }
    }
  } finally {
    await fh?.close();
  }
}
