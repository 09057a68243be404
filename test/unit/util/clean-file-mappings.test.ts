// cleanFileMappings: which mappings of /proc/PID/smaps the idle daemon may drop from its
// page tables (issue 13: idle RSS) — only pages its file holds unchanged.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { cleanFileMappings } from '../../../src/util/clean-file-mappings.js';

function mapping(header: string, rss: number, anonymous = 0, locked = 0): string {
  return [
    header,
    `Size:               1024 kB`,
    `Rss:                ${rss} kB`,
    `Anonymous:          ${anonymous} kB`,
    `Locked:             ${locked} kB`,
    `VmFlags: rd mr mw me`,
  ].join('\n');
}

const SMAPS = [
  mapping('00400000-00b6f000 r--p 00000000 fe:00 260689                             /usr/bin/node', 5948),
  mapping('00b72000-025fe000 r-xp 00772000 fe:00 260689                             /usr/bin/node', 16628),
  mapping('0563a000-0563e000 r--p 05239000 fe:00 260689                             /usr/bin/node', 16, 16),
  mapping('0563e000-0565d000 rw-p 0523d000 fe:00 260689                             /usr/bin/node', 124, 20),
  mapping('0565d000-05700000 rw-p 00000000 00:00 0                                  [heap]', 4968, 4968),
  mapping('7f0000000000-7f0000100000 r-xp 00000000 fe:00 11                         /usr/lib/x86_64-linux-gnu/libc.so.6', 1376),
  mapping('7f0000200000-7f0000300000 r--s 00000000 fe:00 12                         /run/shared.db', 64),
  mapping('7f0000400000-7f0000500000 r--p 00000000 fe:00 13                         /usr/lib/locked.so', 64, 0, 64),
  mapping('7f0000600000-7f0000700000 r--p 00000000 fe:00 14                         /usr/lib/cold.so', 0),
  mapping('7f0000800000-7f0000900000 r-xp 00000000 fe:00 15                         /tmp/gone.so (deleted)', 8),
  mapping('7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]', 8),
].join('\n');

test('only private, read-only file mappings with resident pages, none copied or locked', () => {
  const got = cleanFileMappings(SMAPS).map((m) => [m.start.toString(16), m.end.toString(16), m.path, m.rssKiB]);
  assert.deepEqual(got, [
    ['400000', 'b6f000', '/usr/bin/node', 5948],
    ['b72000', '25fe000', '/usr/bin/node', 16628],
    ['7f0000000000', '7f0000100000', '/usr/lib/x86_64-linux-gnu/libc.so.6', 1376],
  ]);
});

test("this process's own smaps: node's executable is among the clean mappings", () => {
  const got = cleanFileMappings(fs.readFileSync('/proc/self/smaps', 'utf8'));
  const exe = fs.realpathSync('/proc/self/exe');
  assert.ok(
    got.some((m) => m.path === exe && m.end > m.start && m.rssKiB > 0),
    `no clean mapping of ${exe}`,
  );
  assert.ok(got.every((m) => !m.path.startsWith('[')));
});
