// The image verbs of the real `sandlot` CLI (node --import tsx src/cli/bin.ts) against a
// real daemon and real Debian docker-registry instances; plus sandlot.v1.Images, the
// daemon's own service behind `pull` on a terminal and `image import`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { loadSandlotImagesClient } from '../../../src/cri/sandlot-images.js';
import type { ImagesClient } from '../../../src/types/cri/sandlot/v1/Images.js';
import type { ImportRequest } from '../../../src/types/cri/sandlot/v1/ImportRequest.js';
import type { PullEvent__Output } from '../../../src/types/cri/sandlot/v1/PullEvent.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { REPO_ROOT, startDaemon, type TestDaemon } from '../../helpers/daemon.js';
import { buildImage, buildLayer, busyboxLayer, sha256, tarOf } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const BIN = path.join(REPO_ROOT, 'src/cli/bin.ts');
const CLI_TIMEOUT_MS = 120_000;
// Resolved here, so the CLI can run with any working directory.
const TSX = import.meta.resolve('tsx');

let daemon: TestDaemon;
let reg: TestRegistry;
let secured: TestRegistry;
let work: string;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-image-cli-'));
  reg = await startRegistry();
  secured = await startRegistry({ auth: 'htpasswd', username: 'carol', password: 'pa55:word' });
  daemon = await startDaemon();
});
after(async () => {
  await daemon?.cleanup();
  await reg?.stop();
  await secured?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI with stdout a pipe (not a terminal). */
function cli(args: string[], cwd = REPO_ROOT): Promise<CliResult> {
  return run(process.execPath, ['--import', TSX, BIN, ...args, '--socket', daemon.socket], cwd);
}

/** The CLI on a pseudo-terminal of 160 columns, through util-linux `script`. */
function cliOnTty(args: string[]): Promise<CliResult> {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = ['stty cols 160 rows 40;', 'exec', q(process.execPath), '--import', q(TSX), q(BIN), ...args.map(q), '--socket', q(daemon.socket)].join(' ');
  return run('script', ['-qec', cmd, '/dev/null'], REPO_ROOT);
}

function imageIds(): Promise<string[]> {
  return daemon.image('ListImages').then((r) => (r.images as { id: string }[]).map((i) => i.id).sort());
}

test('pull off a terminal prints one line, "up to date" only when nothing new came; images lists it like crictl', async () => {
  const layer = await busyboxLayer();
  const img = buildImage([layer]);
  await pushImage(reg, 'cli/quiet', 'v1', img);
  const ref = `${reg.host}/cli/quiet:v1`;
  const r = await cli(['pull', ref]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Downloaded newer image for ${ref}: ${img.config.digest}\n`);
  const again = await cli(['pull', ref]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `Image is up to date for ${ref}: ${img.config.digest}\n`);
  const st = await daemon.image('ImageStatus', { image: { image: ref } });
  assert.equal(st.image.id, img.config.digest);

  const ls = await cli(['images']);
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE$/);
  const row = lines.find((l) => l.startsWith(`${reg.host}/cli/quiet `));
  assert.ok(row, ls.stdout);
  const cells = row.split(/\s+/);
  assert.deepEqual(cells.slice(1, 3), ['v1', img.config.digest.slice(7, 19)]);
  assert.match(cells[3], /^\d+(\.\d+)?(B|kB|MB)$/);
  const quiet = await cli(['images', '-q', ref]);
  assert.equal(quiet.stdout, `${img.config.digest}\n`);
  const json = await cli(['images', '-o', 'json', ref]);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { images: { id: string }[] }).images.map((i) => i.id),
    [img.config.digest],
  );

  // inspecti: ImageStatus verbose, the info JSON shown as an object (not a string in a string).
  const inspected = await cli(['inspecti', ref]);
  assert.equal(inspected.code, 0, inspected.stderr);
  const view = JSON.parse(inspected.stdout) as { status: { id: string }; info: { info: { id: string; imageSpec: unknown } } };
  assert.equal(view.status.id, img.config.digest);
  assert.equal(view.info.info.id, img.config.digest);
  assert.equal(typeof view.info.info.imageSpec, 'object');
  const yaml = await cli(['inspecti', '-o', 'yaml', ref]);
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.match(yaml.stdout, new RegExp(`^status:\\n[\\s\\S]*id: ${img.config.digest}`));
  const missing = await cli(['inspecti', `${reg.host}/cli/never:v1`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /image ".*cli\/never:v1" not found/);
  const badFormat = await cli(['images', '-o', 'xml']);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /-o "xml": expected json, yaml or table/);

  const fsinfo = await cli(['imagefsinfo']);
  assert.equal(fsinfo.code, 0, fsinfo.stderr);
  assert.match(fsinfo.stdout, /^FILESYSTEM\s+MOUNTPOINT\s+USED\s+INODES\nimage\s+\/\S+\s+\d+(\.\d+)?(B|kB|MB|GB)\s+\d+\n/);
  const fsjson = JSON.parse((await cli(['imagefsinfo', '-o', 'json'])).stdout) as { image_filesystems: { used_bytes: { value: string } }[] };
  assert.ok(Number(fsjson.image_filesystems[0].used_bytes.value) > 0);
});

test('pull on a terminal draws a bar per layer with bytes and rate, through sandlot.v1.Images', async () => {
  const a = await buildLayer([{ type: 'file', name: 'a', data: Buffer.alloc(300_000, 1) }], 'none');
  const b = await buildLayer([{ type: 'file', name: 'b', data: Buffer.alloc(200_000, 2) }], 'none');
  const img = buildImage([a, b]);
  await pushImage(reg, 'cli/bars', 'v1', img);
  const r = await cliOnTty(['pull', `${reg.host}/cli/bars:v1`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const l of [a, b]) {
    const short = l.digest.slice(7, 19);
    // The last redraw of each bar shows the full size of the layer.
    assert.match(r.stdout, new RegExp(`${short} \\[[^\\]]+\\] ${escape(sizeText(l.size))}/${escape(sizeText(l.size))}`), r.stdout);
  }
  assert.match(r.stdout, /\d(B|kB|MB|GB)\/s/, 'a rate is shown');
  assert.match(r.stdout, /Downloaded newer image for \S+\/cli\/bars:v1: sha256:[0-9a-f]{64}/);
  assert.ok(r.stdout.includes(img.config.digest));
});

function sizeText(n: number): string {
  // humanSize's rule for these sizes (below 1 MB): kB with 3 significant digits.
  return `${Number((n / 1000).toPrecision(3))}kB`;
}
function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('pull --creds authenticates; without or with wrong ones it fails naming the registry', async () => {
  const img = buildImage([await buildLayer([{ type: 'file', name: 'private', data: 'p' }])]);
  await pushImage(secured, 'cli/private', 'v1', img);
  const ref = `${secured.host}/cli/private:v1`;
  const none = await cli(['pull', ref]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, new RegExp(`registry "${escape(secured.host)}".*401`));
  const wrong = await cli(['pull', '--creds', 'carol:nope', ref]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /401/);
  const bad = await cli(['pull', '--creds', 'nocolon', ref]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--creds .*USER:PASSWORD/);
  const ok = await cli(['pull', '--creds', 'carol:pa55:word', ref]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, `Downloaded newer image for ${ref}: ${img.config.digest}\n`);
});

test('pull of a missing or malformed reference fails with the reference named; the daemon keeps serving', async () => {
  const before = await imageIds();
  const missing = await cli(['pull', `${reg.host}/cli/nothere:v9`]);
  assert.equal(missing.code, 1);
  assert.ok(missing.stderr.includes(`${reg.host}/cli/nothere:v9`), missing.stderr);
  assert.match(missing.stderr, /not found/);
  const malformed = await cli(['pull', 'Bad::Ref']);
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /image\.image.*Bad::Ref/);
  const usage = await cli(['pull']);
  assert.equal(usage.code, 2);
  assert.deepEqual(await imageIds(), before);
  assert.equal((await daemon.runtime('Version', { version: 'v1' })).runtime_name, 'sandlot');
});

test('image import reads OCI layouts (relative paths resolved by the CLI) and docker-archives through the daemon', async () => {
  const layoutParent = fs.mkdtempSync(path.join(work, 'layout-'));
  await writeBusyboxLayout(path.join(layoutParent, 'bb'));
  const r = await cli(['image', 'import', 'bb'], layoutParent);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Imported docker\.io\/library\/busybox:latest \(sha256:[0-9a-f]{64}\)\n$/);
  const st = await daemon.image('ImageStatus', { image: { image: 'busybox' } });
  assert.ok(st.image, 'busybox is in the daemon');

  const rawLayer = await tarOf([{ type: 'file', name: 'hello', data: 'from a docker-archive\n' }]);
  const img = buildImage([{ mediaType: '', digest: '', size: 0, data: rawLayer, diffId: sha256(rawLayer) }]);
  const archive = await tarOf([
    { type: 'file', name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l/layer.tar'] }]) },
    { type: 'file', name: 'c.json', data: img.config.data },
    { type: 'file', name: 'l/layer.tar', data: rawLayer },
  ]);
  const tarball = path.join(work, 'untagged.tar');
  fs.writeFileSync(tarball, archive);
  const named = await cli(['image', 'import', '--name', 'example.com/cli/archive:v3', tarball]);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(named.stdout, `Imported example.com/cli/archive:v3 (${img.config.digest})\n`);
  assert.equal((await daemon.image('ImageStatus', { image: { image: 'example.com/cli/archive:v3' } })).image.id, img.config.digest);

  const nothing = await cli(['image', 'import', path.join(work, 'no-such.tar')]);
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /no-such\.tar.*no such file/);
  const usage = await cli(['image', 'export', 'x']);
  assert.equal(usage.code, 2);
});

test('rmi removes by tag or ID, reports missing ones, and still removes the rest', async () => {
  const one = buildImage([await buildLayer([{ type: 'file', name: 'one', data: '1' }])]);
  const two = buildImage([await buildLayer([{ type: 'file', name: 'two', data: '2' }])]);
  await pushImage(reg, 'cli/one', 'v1', one);
  await pushImage(reg, 'cli/two', 'v1', two);
  for (const n of ['one', 'two']) assert.equal((await cli(['pull', `${reg.host}/cli/${n}:v1`])).code, 0);
  const r = await cli(['rmi', `${reg.host}/cli/one:v1`, 'example.org/never/pulled:v1', two.config.digest]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `Untagged: ${reg.host}/cli/one:v1\nDeleted: ${one.config.digest}\nUntagged: ${reg.host}/cli/two:v1\nDeleted: ${two.config.digest}\n`);
  assert.match(r.stderr, /image "example\.org\/never\/pulled:v1" not found/);
  const ids = await imageIds();
  assert.ok(!ids.includes(one.config.digest) && !ids.includes(two.config.digest));
  assert.equal((await cli(['rmi'])).code, 2);
});

test('rmi of one of two tags of an image untags it and says so; the last tag deletes the image', async () => {
  const img = buildImage([await buildLayer([{ type: 'file', name: 'shared', data: 'tags' }])]);
  await pushImage(reg, 'cli/shared', 'a', img);
  await pushImage(reg, 'cli/shared', 'b', img);
  for (const tag of ['a', 'b']) assert.equal((await cli(['pull', `${reg.host}/cli/shared:${tag}`])).code, 0);
  const first = await cli(['rmi', `${reg.host}/cli/shared:a`]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, `Untagged: ${reg.host}/cli/shared:a\n`);
  assert.ok((await imageIds()).includes(img.config.digest), 'the image stays under its other tag');
  const last = await cli(['rmi', `${reg.host}/cli/shared:b`]);
  assert.equal(last.stdout, `Untagged: ${reg.host}/cli/shared:b\nDeleted: ${img.config.digest}\n`);
  assert.ok(!(await imageIds()).includes(img.config.digest));
});

function sandlotClient(): ImagesClient {
  const Ctor = loadSandlotImagesClient();
  return new Ctor(`unix://${daemon.socket}`, credentials.createInsecure());
}

test('sandlot.v1.Images/PullWithProgress streams each layer up to its size, then the image ref', async (t) => {
  const layers = [
    await buildLayer([{ type: 'file', name: 'x', data: Buffer.alloc(100_000, 7) }], 'none'),
    await buildLayer([{ type: 'file', name: 'y', data: 'y' }]),
  ];
  const img = buildImage(layers);
  await pushImage(reg, 'cli/stream', 'v1', img);
  const client = sandlotClient();
  t.after(() => client.close());
  const events: PullEvent__Output[] = [];
  // A Readable iterates as any; each message is what the call decodes.
  for await (const ev of client.PullWithProgress({ image: { image: `${reg.host}/cli/stream:v1` } }, new Metadata()) as AsyncIterable<PullEvent__Output>)
    events.push(ev);
  assert.equal(events.at(-1)!.image_ref, img.config.digest);
  for (const l of layers) {
    const mine = events.filter((e) => e.layer?.digest === l.digest).map((e) => e.layer!);
    assert.ok(mine.length > 0, `events for ${l.digest}`);
    assert.deepEqual(mine.at(-1), { digest: l.digest, bytes: String(l.size), total: String(l.size), phase: 'done' });
    assert.ok(mine.every((e) => e.total === String(l.size)));
  }
  assert.ok(!events.some((e) => e.layer?.digest === img.config.digest), 'the config blob is not a layer');

  const fails = async (call: () => AsyncIterable<unknown> | Promise<unknown>, code: Status, re: RegExp): Promise<void> => {
    await assert.rejects(
      (async () => {
        const r = call();
        if (Symbol.asyncIterator in Object(r)) for await (const _ of r as AsyncIterable<unknown>) void _;
        else await r;
      })(),
      (e: unknown) => (e as ServiceError).code === code && re.test((e as ServiceError).details),
    );
  };
  await fails(() => client.PullWithProgress({ image: { image: 'Bad::Ref' } }, new Metadata()), Status.INVALID_ARGUMENT, /Bad::Ref/);
  await fails(() => client.PullWithProgress({ image: { image: `${reg.host}/cli/absent:v1` } }, new Metadata()), Status.NOT_FOUND, /cli\/absent:v1/);
  const importCall = (req: ImportRequest): Promise<unknown> =>
    new Promise((resolve, reject) => client.Import(req, new Metadata(), (e, r) => (e ? reject(e) : resolve(r))));
  await fails(() => importCall({ path: 'relative/dir' }), Status.INVALID_ARGUMENT, /must be absolute/);
  await fails(() => importCall({ path: '' }), Status.INVALID_ARGUMENT, /path must not be empty/);
  await fails(() => importCall({ path: work }), Status.INVALID_ARGUMENT, /no oci-layout/);
});
