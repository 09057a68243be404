// A pass-through that also writes every chunk to a second consumer (the "tap"), at the
// pace of the slower of the two: a layer blob streams into the content store and, in
// the same pass, into its unpack, so it is read from the network once and from disk
// never. The tap is not ended here: the owner ends it once the bytes are verified
// (or destroys it with the reason they are not). A tap that fails or closes early is
// dropped and the main stream goes on: its consumer reports its own error.
import { Transform, type TransformCallback, type Writable } from 'node:stream';

/**
 * What the tap's consumer (a PassThrough into the gunzip) may buffer: enough to keep
 * it busy, small enough that its chunks die young (batched-file-writer.ts).
 */
export const TAP_BUFFER_BYTES = 64 * 1024;

export class TapStream extends Transform {
  private tap: Writable | undefined;

  constructor(tap: Writable) {
    super();
    this.tap = tap;
    tap.once('close', () => this.detach());
    tap.once('error', () => this.detach());
  }

  private detach(): void {
    this.tap = undefined;
    this.emit('tap-detached');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const tap = this.tap;
    if (tap === undefined || tap.destroyed || tap.write(chunk)) {
      cb(null, chunk);
      return;
    }
    // The tap is behind: hold this chunk until it drains (or goes away).
    const go = (): void => {
      tap.off('drain', go);
      this.off('tap-detached', go);
      cb(null, chunk);
    };
    tap.on('drain', go);
    this.on('tap-detached', go);
  }
}
