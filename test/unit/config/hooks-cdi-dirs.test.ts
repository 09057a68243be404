// hooks_dirs (S6) and cdi_spec_dirs (S20): defaults as CRI-O's and the CDI library's,
// YAML override, validation naming the key.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../../src/config/config-error.js';
import { loadConfig } from '../../../src/config/load.js';

function withFile(t: { after: (fn: () => void) => void }, yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-dirs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

test('hooks_dirs and cdi_spec_dirs default to the usual node directories', () => {
  const { config } = loadConfig({ configFile: undefined, env: {}, flags: {} });
  assert.deepEqual(config.hooks_dirs, ['/usr/share/containers/oci/hooks.d', '/etc/containers/oci/hooks.d']);
  assert.deepEqual(config.cdi_spec_dirs, ['/etc/cdi', '/var/run/cdi']);
});

test('the directories are read from the config file; bad ones are ConfigErrors naming the key', (t) => {
  const { config } = loadConfig({ configFile: withFile(t, 'hooks_dirs: [/opt/hooks]\ncdi_spec_dirs: []\n'), env: {} });
  assert.deepEqual(config.hooks_dirs, ['/opt/hooks']);
  assert.deepEqual(config.cdi_spec_dirs, []);
  for (const [yaml, key] of [
    ['hooks_dirs: relative/dir\n', 'hooks_dirs'],
    ['hooks_dirs: [relative/dir]\n', 'hooks_dirs[0]'],
    ['cdi_spec_dirs: [/etc/cdi, /a/../b]\n', 'cdi_spec_dirs[1]'],
  ] as const) {
    assert.throws(
      () => loadConfig({ configFile: withFile(t, yaml), env: {} }),
      (e: unknown) => e instanceof ConfigError && e.key === key,
      yaml,
    );
  }
});
