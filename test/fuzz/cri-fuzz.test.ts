// Seeded fuzzing of every RPC of both CRI services against a real test daemon: request
// bodies built from the proto's own message types with hostile values (huge, empty,
// unicode, "..", NUL strings in IDs, names, paths, labels; negative and huge numbers;
// unknown enum values; missing nested messages; existing and unknown IDs), and, for a
// share of them, damaged on the wire (truncated, flipped, wrong wire types, garbage).
// Asserted: the daemon stays up and answers Version; no input answers INTERNAL or
// UNKNOWN (every such (rpc, code, message) is listed on failure); the lists answer
// afterwards; what the fuzzer created is gone after it removes it.
//
// SANDLOT_FUZZ_SEED and SANDLOT_FUZZ_COUNT change the run (default seed 1207, 2,400
// requests). Only loopback: an image reference that could name a registry is sent to
// 127.0.0.1:1, every path points into the daemon's own directory.
import { Client, credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { protoPath } from '../../src/cri/proto.js';
import { BUSYBOX, makeContainerEnv, waitFor } from '../integration/container/container-env.js';
import { seededRandom } from '../helpers/seeded-random.js';

const SEED = Number(process.env.SANDLOT_FUZZ_SEED ?? 1207);
const COUNT = Number(process.env.SANDLOT_FUZZ_COUNT ?? 2400);
const CALL_TIMEOUT_MS = 20_000;
const STREAM_OPEN_MS = 1_500;
const CONCURRENCY = 8;

interface Rpc {
  service: 'RuntimeService' | 'ImageService';
  method: string;
  type: protobuf.Type;
  stream: boolean;
}

/** The code of a call that got no answer at all, not even its deadline: a hang. */
const NO_ANSWER = -1;

interface Outcome {
  rpc: string;
  code: Status | typeof NO_ANSWER;
  details: string;
}

class Fuzzer {
  readonly rnd: () => number;
  constructor(
    seed: number,
    private readonly ids: () => string[],
    private readonly dir: string,
  ) {
    this.rnd = seededRandom(seed);
  }

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  string(field: string): string {
    const ids = this.ids();
    const inDir = (p: string) => path.join(this.dir, 'fuzz', p);
    const pool: Array<() => string> = [
      () => '',
      () => ' ',
      () => '..',
      () => '../../etc/passwd',
      () => '/../..',
      () => 'a/../../b',
      () => 'nul\0byte',
      () => '\0',
      () => 'ünïcødé-名前-🚀',
      () => '\u202e\u200b\ufeff',
      () => 'line\nbreak\r\n',
      () => '%s%n%x',
      () => '${HOME}$(id)`id`',
      () => 'a'.repeat(1 + this.int(300)),
      () => 'x'.repeat(4096 + this.int(12_000)),
      () => 'f'.repeat(64),
      () => '0123456789abcdef'.repeat(4).slice(0, 1 + this.int(63)),
      () => 'UPPER_case.Name-1',
      () => '-leading-dash',
      () => 'k8s.io/name',
      () => inDir(`p${this.int(5)}`),
      () => `${inDir('a')}/../..`,
      () => 'relative/path',
      () => '/nonexistent-sandlot-fuzz/x',
      () => String(this.int(1e6)),
      () => (ids.length > 0 ? this.pick(ids) : 'f'.repeat(64)),
      () => (ids.length > 0 ? this.pick(ids).slice(0, 1 + this.int(12)) : 'abc'),
      () => (ids.length > 0 ? `${this.pick(ids)}/..` : '..'),
      () => BUSYBOX,
      () => 'busybox',
      () => 'sha256:' + 'a'.repeat(64),
      () => 'sha256:../../../etc/passwd',
      () => 'runc',
      () => 'runsc',
      () => 'POD',
      () => String.fromCharCode(...Array.from({ length: 1 + this.int(40) }, () => 1 + this.int(0xd7ff))),
    ];
    let s = this.pick(pool)();
    // Paths the daemon might write stay in its directory.
    if (/path|location|directory|dir$/i.test(field) && path.isAbsolute(s) && !s.startsWith(this.dir) && !s.startsWith('/nonexistent')) {
      s = inDir(s.replace(/^\/+/, ''));
    }
    return s;
  }

  number(kind: string, field: string): number | string {
    // A graceful stop waits its whole timeout while it holds the container's lock (see
    // the report of issue 11): timeouts stay short so the run stays bounded.
    if (field === 'timeout') return this.pick([-(2 ** 53 - 1), -1, 0, 1, 2]);
    const pool = [0, 1, -1, 2, 7, 255, 1024, -1024, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1), 1e15, this.int(100000)];
    const n = this.pick(pool);
    if (kind.startsWith('uint') || kind.startsWith('fixed')) return Math.abs(n);
    if (kind === 'int32' || kind === 'sint32' || kind === 'sfixed32') return n | 0;
    if (kind === 'double' || kind === 'float') return this.pick([n, 0.5, -0.5, Number.MAX_VALUE, Number.MIN_VALUE]);
    return n;
  }

  scalar(field: protobuf.Field): unknown {
    const t = field.type;
    if (t === 'string') return this.string(field.name);
    if (t === 'bool') return this.chance(0.5);
    if (t === 'bytes') return Buffer.from(Array.from({ length: this.int(64) }, () => this.int(256)));
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      const values = Object.values(rt.values);
      return this.chance(0.6) ? this.pick(values) : this.pick([99, -1, 2 ** 31 - 1, 12345]);
    }
    if (rt instanceof protobuf.Type) return this.message(rt, 1);
    return this.number(t, field.name);
  }

  message(type: protobuf.Type, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (depth > 5) return out;
    for (const field of type.fieldsArray) {
      field.resolve();
      if (this.chance(depth === 0 ? 0.15 : 0.35)) continue; // missing (nested) fields
      const one = (): unknown => (field.resolvedType instanceof protobuf.Type ? this.message(field.resolvedType, depth + 1) : this.scalar(field));
      if (field instanceof protobuf.MapField) {
        const m: Record<string, unknown> = {};
        const n = this.chance(0.05) ? 200 : this.int(4);
        for (let i = 0; i < n; i++) m[this.chance(0.2) ? `k${i}` : this.string('key') || `k${i}`] = one();
        out[field.name] = m;
      } else if (field.repeated) {
        const n = this.chance(0.05) ? 60 : this.int(4);
        out[field.name] = Array.from({ length: n }, one);
      } else {
        out[field.name] = one();
      }
    }
    // Keep the daemon off the network: a PullImage names an unreachable loopback port.
    if (type.name === 'ImageSpec' && typeof out.image === 'string' && /^[a-z0-9._/:@-]+$/.test(out.image)) {
      out.image = `127.0.0.1:1/${out.image.replace(/^[^/]*\.[^/]*\//, '')}`;
    }
    return out;
  }

  /** The encoded body, damaged on the wire for some of them. */
  body(type: protobuf.Type): Buffer {
    const good = Buffer.from(type.encode(type.fromObject(this.message(type, 0))).finish());
    const r = this.rnd();
    if (r < 0.62) return good;
    if (r < 0.68) return Buffer.alloc(0);
    if (r < 0.74) return good.subarray(0, this.int(good.length + 1));
    if (r < 0.8) {
      const b = Buffer.from(good);
      for (let i = 0; i < 1 + this.int(4) && b.length > 0; i++) b[this.int(b.length)] = this.int(256);
      return b;
    }
    if (r < 0.86) return Buffer.concat([good, Buffer.from(Array.from({ length: 1 + this.int(32) }, () => this.int(256)))]);
    if (r < 0.92 && type.fieldsArray.length > 0) {
      // A known field number with the wrong wire type: varint where a string or message is, or the reverse.
      const f = this.pick(type.fieldsArray);
      const wire = this.pick([0, 1, 2, 5, 3, 4, 6, 7]);
      const w = protobuf.Writer.create().uint32((f.id << 3) | wire);
      if (wire === 0) w.uint64(this.pick([0, 1, 2 ** 53 - 1]));
      else if (wire === 2) w.bytes(Buffer.from('x'.repeat(this.int(20))));
      else if (wire === 1) w.fixed64(7);
      else if (wire === 5) w.fixed32(7);
      return Buffer.concat([Buffer.from(w.finish()), good]);
    }
    if (r < 0.96) return Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]); // a length far past the end
    return Buffer.from(Array.from({ length: this.int(200) }, () => this.int(256)));
  }
}

function rpcsOf(root: protobuf.Root): Rpc[] {
  const out: Rpc[] = [];
  for (const service of ['RuntimeService', 'ImageService'] as const) {
    const svc = root.lookupService(`runtime.v1.${service}`);
    for (const m of svc.methodsArray) {
      m.resolve();
      out.push({ service, method: m.name, type: m.resolvedRequestType!, stream: Boolean(m.responseStream) });
    }
  }
  return out;
}

function call(client: Client, rpc: Rpc, body: Buffer): Promise<Outcome> {
  const pathName = `/runtime.v1.${rpc.service}/${rpc.method}`;
  const name = `${rpc.service}/${rpc.method}`;
  const id = (b: Buffer) => b;
  // A stream that was accepted sends nothing until there is news: it is open after its short deadline.
  const deadline = new Date(Date.now() + (rpc.stream ? STREAM_OPEN_MS : CALL_TIMEOUT_MS));
  return new Promise((resolveCall) => {
    // A guard past the deadline: a call that the client's own deadline did not end is a hang.
    const guard = setTimeout(() => resolveCall({ rpc: name, code: NO_ANSWER, details: 'no answer, not even the deadline' }), CALL_TIMEOUT_MS + 10_000);
    const resolve = (o: Outcome) => {
      clearTimeout(guard);
      resolveCall(o);
    };
    if (!rpc.stream) {
      client.makeUnaryRequest(pathName, id, id, body, new Metadata(), { deadline }, (err: ServiceError | null) =>
        resolve({ rpc: name, code: err ? err.code : Status.OK, details: err?.details ?? '' }),
      );
      return;
    }
    // A stream that is accepted stays open: its first message (or the status) is the answer.
    const s = client.makeServerStreamRequest(pathName, id, id, body, new Metadata(), { deadline });
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      resolve(o);
      s.cancel();
    };
    s.on('data', () => finish({ rpc: name, code: Status.OK, details: '' }));
    const streamStatus = (code: Status, details: string) =>
      finish(code === Status.DEADLINE_EXCEEDED ? { rpc: name, code: Status.OK, details: 'stream open' } : { rpc: name, code, details });
    s.on('error', (e: ServiceError) => streamStatus(e.code, e.details));
    s.on('status', (st: { code: Status; details: string }) => streamStatus(st.code, st.details));
    // An accepted stream with nothing to say yet is an answer too.
    s.on('metadata', () => setImmediate(() => finish({ rpc: name, code: Status.OK, details: 'stream open' })));
  });
}

test(
  'fuzz: seeded hostile requests over every CRI RPC answer a client status, never INTERNAL/UNKNOWN; the daemon stays up and consistent',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    // Existing objects for the fuzzer to name: a pod on each handler with a container.
    const pods = [await env.runPod('fuzz-runc')];
    pods.push(await env.runPod('fuzz-runsc', {}, 'runsc'));
    const ctrs: string[] = [];
    for (const p of pods) ctrs.push(await env.createContainer(p, `c-${ctrs.length}`, { command: ['/bin/sh', '-c', 'sleep 3600'] }));
    await d.runtime('StartContainer', { container_id: ctrs[0] });
    const imageIds = ((await d.image('ListImages', {})).images as Array<{ id: string }>).map((i) => i.id);
    const baseImages = imageIds.length;
    fs.mkdirSync(path.join(d.dir, 'fuzz'), { recursive: true });

    const known = () => [...pods, ...ctrs, ...imageIds];
    const fz = new Fuzzer(SEED, known, d.dir);
    const root = protobuf.loadSync(protoPath());
    // The camelCase names protobufjs uses do not matter on the wire; keepCase is only for reading.
    const rpcs = rpcsOf(root);
    assert.ok(rpcs.length >= 40, `the proto has ${rpcs.length} RPCs`);
    const client = new Client(`unix://${d.socket}`, credentials.createInsecure());
    t.after(() => client.close());
    // SANDLOT_FUZZ_DAEMON_LOG=<file> keeps the daemon's log of the run (it is lost with the test process otherwise).
    const logFile = process.env.SANDLOT_FUZZ_DAEMON_LOG;
    if (logFile) t.after(() => fs.writeFileSync(logFile, d.stderr));

    const bad: Outcome[] = [];
    const byCode = new Map<string, number>();
    const byRpc = new Set<string>();
    let sent = 0;
    const started = Date.now();
    const worker = async () => {
      while (sent < COUNT) {
        const i = sent++;
        // Round robin over the RPCs, so each gets its share; the body is the PRNG's.
        const rpc = rpcs[i % rpcs.length];
        const body = fz.body(rpc.type);
        if (process.env.SANDLOT_FUZZ_TRACE) console.error(`#${i} ${rpc.method} ${body.length}`);
        const o = await call(client, rpc, body);
        byRpc.add(o.rpc);
        const name = Status[o.code] ?? String(o.code);
        byCode.set(name, (byCode.get(name) ?? 0) + 1);
        if (process.env.SANDLOT_FUZZ_TRACE) console.error(`#${i} ${rpc.method} -> ${o.code} ${o.details.slice(0, 200)}`);
        if (o.code === Status.INTERNAL || o.code === Status.UNKNOWN || o.code === Status.DEADLINE_EXCEEDED || o.code === NO_ANSWER) {
          bad.push({ ...o, details: `${o.details.slice(0, 300)} [request #${i}, ${body.length} bytes]` });
        }
        if (i % 400 === 399) {
          const v = await d.runtime('Version', {}, 30_000);
          assert.equal(v.runtime_name, 'sandlot', `the daemon answers Version after ${i + 1} requests`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (Date.now() - started) / 1000;
    const codes = [...byCode.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(`fuzz seed ${SEED}: ${sent} requests over ${byRpc.size} RPCs in ${seconds.toFixed(1)} s: ${codes}`);

    // Alive: the process and the socket.
    assert.equal(d.child?.exitCode, null, `the daemon is running:\n${d.stderr.slice(-2000)}`);
    assert.equal((await d.runtime('Version', {})).runtime_name, 'sandlot');
    assert.equal(byRpc.size, rpcs.length, 'every RPC was called');
    assert.deepEqual(
      bad.map((b) => `${b.rpc} ${Status[b.code] ?? 'HANG'}: ${b.details}`),
      [],
      'no hostile input answers INTERNAL, UNKNOWN or hangs',
    );

    // Consistent: the lists answer; remove everything the fuzzer made (and the fixtures).
    const cs = (await d.runtime('ListContainers', {})).containers as Array<{ id: string }>;
    const ps = (await d.runtime('ListPodSandbox', {})).items as Array<{ id: string }>;
    const is = (await d.image('ListImages', {})).images as Array<{ id: string }>;
    console.log(`after fuzzing: ${ps.length} pods, ${cs.length} containers, ${is.length} images (${baseImages} before)`);
    for (const c of cs) await d.runtime('RemoveContainer', { container_id: c.id }, 60_000);
    for (const p of ps) {
      await d.runtime('StopPodSandbox', { pod_sandbox_id: p.id }, 60_000);
      await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }, 60_000);
    }
    await waitFor(
      'no pod and no container listed',
      async () => {
        const c2 = (await d.runtime('ListContainers', {})).containers as unknown[];
        const p2 = (await d.runtime('ListPodSandbox', {})).items as unknown[];
        return c2.length === 0 && p2.length === 0;
      },
      60_000,
    );
    for (const sub of ['pods', 'containers']) {
      const dir = path.join(d.rootDir, sub);
      const left = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      assert.deepEqual(left, [], `nothing left under ${dir}`);
    }
    // The daemon's own netns directory is a shared bind mount while it runs; nothing below it may stay.
    const netnsDir = path.join(d.stateDir, 'netns');
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(d.dir) && l.split(' ')[4] !== netnsDir);
    assert.deepEqual(mounts, [], 'no mount of a removed pod stays');
    assert.ok(((await d.image('ListImages', {})).images as unknown[]).length >= 1, 'ListImages answers');
  },
);
