// Streaming TLS and exposure settings (issue 11 item 10): the loopback default, TLS file
// validation naming the key, and the warning for endpoints beyond loopback.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../../src/config/config-error.js';
import { loadConfig } from '../../../src/config/load.js';
import { exposureWarnings, isLoopbackAddress, loadStreamingTls } from '../../../src/config/streaming-tls.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-tls-cfg-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const pem = (name: string): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `-----BEGIN ${name}-----\n-----END ${name}-----\n`);
  return p;
};
const cert = pem('cert.pem');
const key = pem('key.pem');
const ca = pem('ca.pem');

function load(yaml: string) {
  const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, yaml);
  return loadConfig({ configFile: file, env: {} }).config;
}

function rejectsKey(yaml: string, key: string, why: RegExp): void {
  assert.throws(
    () => load(yaml),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key);
      assert.match(e.message, why);
      assert.ok(e.message.includes(key), 'the message names the key');
      return true;
    },
  );
}

test('defaults: the streaming server on loopback, plain HTTP, no TLS files', () => {
  const c = load('log_level: info\n');
  assert.equal(c.streaming_address, '127.0.0.1:0');
  assert.equal(isLoopbackAddress(c.streaming_address), true);
  assert.deepEqual([c.streaming_tls_cert_file, c.streaming_tls_key_file, c.streaming_tls_client_ca_file], ['', '', '']);
  assert.equal(loadStreamingTls(c), undefined);
  assert.deepEqual(exposureWarnings(c), []);
});

test('cert, key and client CA given: validated, then read as PEM material', () => {
  const c = load(`streaming_tls_cert_file: ${cert}\nstreaming_tls_key_file: ${key}\nstreaming_tls_client_ca_file: ${ca}\n`);
  assert.equal(c.streaming_tls_client_ca_file, ca);
  const m = loadStreamingTls(c)!;
  assert.match(m.cert.toString(), /BEGIN cert\.pem/);
  assert.match(m.key.toString(), /BEGIN key\.pem/);
  assert.match(m.clientCa!.toString(), /BEGIN ca\.pem/);
  // TLS without a client CA only encrypts; it is allowed.
  assert.equal(loadStreamingTls(load(`streaming_tls_cert_file: ${cert}\nstreaming_tls_key_file: ${key}\n`))!.clientCa, undefined);
});

test('only one of cert and key is a config error naming the missing key', () => {
  rejectsKey(`streaming_tls_cert_file: ${cert}\n`, 'streaming_tls_key_file', /required with it/);
  rejectsKey(`streaming_tls_key_file: ${key}\n`, 'streaming_tls_cert_file', /required with it/);
});

test('a client CA without a server certificate is a config error naming it', () => {
  rejectsKey(`streaming_tls_client_ca_file: ${ca}\n`, 'streaming_tls_client_ca_file', /need TLS/);
});

test('bad TLS paths are config errors naming the key: missing, relative, a directory, not a string', () => {
  rejectsKey(`streaming_tls_cert_file: ${dir}/nope.pem\nstreaming_tls_key_file: ${key}\n`, 'streaming_tls_cert_file', /exist and be readable \(ENOENT\)/);
  rejectsKey(`streaming_tls_cert_file: ${cert}\nstreaming_tls_key_file: key.pem\n`, 'streaming_tls_key_file', /absolute path/);
  rejectsKey(
    `streaming_tls_cert_file: ${cert}\nstreaming_tls_key_file: ${key}\nstreaming_tls_client_ca_file: ${dir}\n`,
    'streaming_tls_client_ca_file',
    /regular file/,
  );
  rejectsKey(`streaming_tls_cert_file: 5\nstreaming_tls_key_file: ${key}\n`, 'streaming_tls_cert_file', /string/);
});

test('loopback detection: localhost, 127/8, ::1 are loopback; wildcards and other hosts are not', () => {
  for (const a of ['127.0.0.1:0', '127.1.2.3:10250', 'localhost:9436', '[::1]:0', '[::ffff:127.0.0.1]:1']) assert.equal(isLoopbackAddress(a), true, a);
  for (const a of ['0.0.0.0:0', '[::]:0', '10.0.0.5:10010', 'node1.example:9436', '[fe80::1]:0']) assert.equal(isLoopbackAddress(a), false, a);
});

test('streaming_address and metrics_address beyond loopback each get a warning saying what guards them', () => {
  const open = exposureWarnings(load('streaming_address: 0.0.0.0:0\nmetrics_address: 0.0.0.0:9436\n'));
  assert.deepEqual(
    open.map((w) => w.key),
    ['streaming_address', 'metrics_address'],
  );
  assert.match(open[0].msg, /no client certificate is required/);
  assert.match(open[1].msg, /without authentication/);
  const guarded = exposureWarnings(
    load(
      `streaming_address: 0.0.0.0:0\nmetrics_address: ""\nstreaming_tls_cert_file: ${cert}\nstreaming_tls_key_file: ${key}\nstreaming_tls_client_ca_file: ${ca}\n`,
    ),
  );
  assert.deepEqual(
    guarded.map((w) => w.key),
    ['streaming_address'],
  );
  assert.match(guarded[0].msg, /must present a certificate signed by streaming_tls_client_ca_file/);
});
