// A client whose first header block is no valid HPACK (RFC 7541) is refused on its own
// connection, and the daemon goes on serving: the connection opener used to decode that
// block with an exception that escaped the socket's 'data' listener and ended the daemon.
// Now the block goes on to nghttp2, which closes that connection with a GOAWAY naming
// COMPRESSION_ERROR (RFC 9113 §4.3).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { CriClient } from '../../../src/cli/client.js';
import { startDaemon } from '../../helpers/daemon.js';
import { frame, PREFACE } from '../../helpers/http2-frames.js';
import { waitFor } from '../../helpers/wait.js';

const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_GOAWAY = 0x7;
const FLAG_ACK = 0x1;
const FLAGS_END_STREAM_HEADERS = 0x5;
const COMPRESSION_ERROR = 0x9;

/** The frames in `bytes` (whole ones), as type and payload. */
function frames(bytes: Buffer): Array<{ type: number; payload: Buffer }> {
  const out: Array<{ type: number; payload: Buffer }> = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    out.push({ type: bytes[at + 3], payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return out;
}

test('a first header block that is no HPACK: that connection gets GOAWAY COMPRESSION_ERROR, the daemon answers the next client', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  // Each block: an index past the static table with an empty dynamic one, an index whose
  // integer runs past the block, a Huffman string cut short.
  for (const block of [[0xbf], [0xff], [0x41, 0x85, 0xff]]) {
    const c = net.connect(d.socket);
    t.after(() => c.destroy());
    const got: Buffer[] = [];
    c.on('data', (b: Buffer) => got.push(b));
    await new Promise((resolve) => c.once('connect', resolve));
    c.write(Buffer.concat([PREFACE, frame(TYPE_SETTINGS, 0, 0), frame(TYPE_SETTINGS, FLAG_ACK, 0), frame(TYPE_HEADERS, FLAGS_END_STREAM_HEADERS, 1, block)]));
    const goaway = () => frames(Buffer.concat(got)).find((f) => f.type === TYPE_GOAWAY);
    await waitFor(`a GOAWAY for the block ${JSON.stringify(block)}`, () => goaway() !== undefined);
    assert.equal(goaway()?.payload.readUInt32BE(4), COMPRESSION_ERROR, 'the GOAWAY names COMPRESSION_ERROR');
    c.destroy();
    const client = new CriClient(d.socket);
    try {
      assert.equal((await client.runtimeCall('Version', {})).runtime_name, 'sandlot', 'the daemon still answers');
    } finally {
      client.close();
    }
  }
});
