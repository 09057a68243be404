import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../../src/config/config-error.js';
import { loadConfig } from '../../../src/config/load.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function withFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cfg-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, text);
  return file;
}

test('embedded defaults apply when no file, env or flag is given', () => {
  const { config, file } = loadConfig({ configFile: undefined, env: {}, flags: {} });
  // /etc/sandlot/config.yaml may exist on a node; here it does not.
  if (file === undefined) {
    assert.equal(config.socket_path, '/run/sandlot/sandlot.sock');
    assert.equal(config.root_dir, '/var/lib/sandlot');
    assert.equal(config.state_dir, '/run/sandlot');
    assert.equal(config.default_runtime, 'runc');
    assert.equal(config.metrics_address, '127.0.0.1:9436');
    assert.equal(config.runtimes.runsc?.type, 'runsc');
  }
});

test('file overrides defaults, env overrides file, flags override env', () => {
  const file = withFile('socket_path: /tmp/a.sock\nlog_level: warn\nroot_dir: /tmp/root-file\n');
  const { config } = loadConfig({
    configFile: file,
    env: { SANDLOT_LOG_LEVEL: 'error', SANDLOT_ROOT: '/tmp/root-env' },
    flags: { root: '/tmp/root-flag' },
  });
  assert.equal(config.socket_path, '/tmp/a.sock');
  assert.equal(config.log_level, 'error');
  assert.equal(config.root_dir, '/tmp/root-flag');
});

test('handlers named in the file are added to the built-in ones', () => {
  const file = withFile('runtimes:\n  kata:\n    type: oci\n    path: /usr/bin/kata\n    args: [--debug]\n');
  const { config } = loadConfig({ configFile: file, env: {} });
  assert.deepEqual(config.runtimes.kata?.args, ['--debug']);
  assert.ok(config.runtimes.runc);
});

const BAD: Array<[string, string, RegExp]> = [
  ['log_level: loud\n', 'log_level', /allowed values: trace, debug, info/],
  ['socket_path: relative.sock\n', 'socket_path', /absolute path/],
  ['metrics_address: nowhere\n', 'metrics_address', /host:port/],
  ['default_runtime: kata\n', 'default_runtime', /configured handlers: runc, crun, runsc/],
  ['runtimes:\n  x:\n    type: docker\n', 'runtimes.x.type', /allowed values: oci, runsc/],
  ['cni_default_subnet: 10.0.0.0/33\n', 'cni_default_subnet', /IPv4 CIDR/],
  ['no_such_key: 1\n', 'no_such_key', /unknown key/],
  ['- a list\n', 'config', /YAML mapping/],
];

for (const [text, key, why] of BAD) {
  test(`a bad value of ${key} is a ConfigError naming the key and what is allowed`, () => {
    const file = withFile(text);
    assert.throws(
      () => loadConfig({ configFile: file, env: {} }),
      (e: unknown) => e instanceof ConfigError && e.key === key && why.test(e.message) && e.message.includes(key),
    );
  });
}

test('a missing config file named explicitly is an error naming it', () => {
  assert.throws(() => loadConfig({ configFile: '/nonexistent/sandlot.yaml', env: {} }), /\/nonexistent\/sandlot.yaml/);
});
