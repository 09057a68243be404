// The image unpack limits (issue 11 item 4): defaults, YAML override, validation.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../../src/config/config-error.js';
import { loadConfig } from '../../../src/config/load.js';

function withFile(t: { after: (fn: () => void) => void }, yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-limits-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

test('max_layer_unpacked_bytes and max_image_unpacked_bytes default to 8 GiB and 16 GiB', () => {
  const { config } = loadConfig({ configFile: undefined, env: {}, flags: {} });
  assert.equal(config.max_layer_unpacked_bytes, 8 * 1024 ** 3);
  assert.equal(config.max_image_unpacked_bytes, 16 * 1024 ** 3);
});

test('the limits are read from the config file', (t) => {
  const { config } = loadConfig({ configFile: withFile(t, 'max_layer_unpacked_bytes: 1048576\nmax_image_unpacked_bytes: 2097152\n'), env: {} });
  assert.equal(config.max_layer_unpacked_bytes, 1 << 20);
  assert.equal(config.max_image_unpacked_bytes, 2 << 20);
});

test('bad limits are ConfigErrors naming the key and value', (t) => {
  for (const [yaml, key] of [
    ['max_layer_unpacked_bytes: 0\n', 'max_layer_unpacked_bytes'],
    ['max_layer_unpacked_bytes: -5\n', 'max_layer_unpacked_bytes'],
    ['max_image_unpacked_bytes: "1G"\n', 'max_image_unpacked_bytes'],
    ['max_image_unpacked_bytes: 1.5\n', 'max_image_unpacked_bytes'],
    ['max_layer_unpacked_bytes: 4096\nmax_image_unpacked_bytes: 1024\n', 'max_layer_unpacked_bytes'],
  ] as const) {
    assert.throws(
      () => loadConfig({ configFile: withFile(t, yaml), env: {} }),
      (e: unknown) => e instanceof ConfigError && e.key === key && e.message.includes(key),
      yaml,
    );
  }
});
