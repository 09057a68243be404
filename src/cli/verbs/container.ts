// ps, logs, stop, rm: the container verbs, in crictl's spirit (run lives in run.ts).
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../errors.js';
import type { CriClient, CriMessage } from '../client.js';
import { CriLogDecoder, LineJoiner, recordText, tailLines, type CriLogRecord, type LogLine } from '../cri-log.js';
import { containerRows, CONTAINER_HEADER, imageNames, newestFirst } from '../cri-tables.js';
import { followCriLog } from '../log-follow.js';
import { errorText, listContainers, LIST_TIMEOUT_MS, resolveContainer, resolvePod } from '../lookup.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SOCKET_OPTION, table, withClient, type Verb } from '../verb.js';

export const DEFAULT_STOP_TIMEOUT_S = 10;
const STATUS_TIMEOUT_MS = 30_000;
/** The daemon's own grace comes on top of what the person asked for. */
const STOP_SLACK_MS = 60_000;

export async function containerStatus(c: CriClient, id: string): Promise<CriMessage> {
  const res = await c.runtimeCall('ContainerStatus', { container_id: id }, { timeoutMs: STATUS_TIMEOUT_MS });
  return (res.status ?? {}) as CriMessage;
}

export const psVerb: Verb = {
  name: 'ps',
  summary: 'list running containers (-a: all) (CONTAINER, IMAGE, CREATED, STATE, NAME, ATTEMPT, POD ID)',
  options: {
    ...SOCKET_OPTION,
    all: { type: 'boolean', short: 'a' },
    quiet: { type: 'boolean', short: 'q' },
    pod: { type: 'string', short: 'p' },
  },
  async run(values) {
    const { items, names } = await withClient(values, async (c) => {
      const filter: CriMessage = {};
      if (!values.all) filter.state = { state: 'CONTAINER_RUNNING' };
      if (values.pod !== undefined) filter.pod_sandbox_id = await resolvePod(c, String(values.pod));
      const found = await listContainers(c, filter);
      if (values.quiet || found.length === 0) return { items: found, names: imageNames([]) };
      const images = await c.imageCall('ListImages', {}, { timeoutMs: LIST_TIMEOUT_MS });
      return { items: found, names: imageNames((images.images ?? []) as CriMessage[]) };
    });
    if (values.quiet) {
      for (const x of newestFirst(items)) process.stdout.write(`${x.id}\n`);
      return EXIT_OK;
    }
    process.stdout.write(table(CONTAINER_HEADER, containerRows(items, Date.now(), names)));
    return EXIT_OK;
  },
};

function writeLine(l: LogLine): void {
  // A whole line; partial records go through writeRecord and carry no newline.
  (l.stream === 'stderr' ? process.stderr : process.stdout).write(`${l.text}\n`);
}

function writeRecord(r: CriLogRecord): void {
  (r.stream === 'stderr' ? process.stderr : process.stdout).write(recordText(r));
}

/** Whole lines of what the file holds now, the partial records after them, and the bytes read. */
async function readLog(p: string): Promise<{ lines: LogLine[]; pending: CriLogRecord[]; offset: number }> {
  let content: Buffer;
  try {
    content = await fsp.readFile(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { lines: [], pending: [], offset: 0 };
    throw e;
  }
  // Only up to the last newline: a record being written is read by the follow.
  const end = content.lastIndexOf(10) + 1;
  const join = new LineJoiner();
  const lines: LogLine[] = [];
  let pending: CriLogRecord[] = [];
  for (const rec of new CriLogDecoder().push(content.subarray(0, end))) {
    const l = join.push(rec);
    if (l) {
      lines.push(l);
      pending = pending.filter((x) => x.stream !== rec.stream);
    } else {
      pending.push(rec);
    }
  }
  return { lines, pending, offset: end };
}

export const logsVerb: Verb = {
  name: 'logs',
  summary: "print a container's log (-f: follow until it exits, --tail N: the last N lines)",
  usage: 'CONTAINER',
  options: { ...SOCKET_OPTION, follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' } },
  async run(values, positionals) {
    if (positionals.length !== 1) {
      process.stderr.write('usage: sandlot logs [--socket PATH] [-f] [--tail N] CONTAINER\n');
      return EXIT_USAGE;
    }
    const tail = values.tail === undefined ? -1 : Number(values.tail);
    if (!Number.isInteger(tail)) {
      process.stderr.write(`sandlot logs: --tail ${JSON.stringify(values.tail)}: expected a whole number\n`);
      return EXIT_USAGE;
    }
    return withClient(values, async (c) => {
      const id = await resolveContainer(c, positionals[0]!);
      const st = await containerStatus(c, id);
      const logPath = String(st.log_path ?? '');
      if (!path.isAbsolute(logPath)) {
        throw new Error(`reading the log of container "${id}": its log path ${JSON.stringify(logPath)} is not absolute`);
      }
      const now = await readLog(logPath);
      for (const l of tailLines(now.lines, tail)) writeLine(l);
      // Partial records after the last whole line: shown as written (no newline of
      // their own), and with -f their line goes on as the container writes it.
      for (const r of now.pending) writeRecord(r);
      if (!values.follow) return EXIT_OK;
      const ac = new AbortController();
      const onSig = (): void => ac.abort();
      process.once('SIGINT', onSig);
      try {
        await followCriLog({
          path: logPath,
          startOffset: now.offset,
          onRecord: writeRecord,
          signal: ac.signal,
          isDone: async () => (await containerStatus(c, id)).state === 'CONTAINER_EXITED',
        });
      } finally {
        process.off('SIGINT', onSig);
      }
      return EXIT_OK;
    });
  },
};

/** Runs `fn` on each ID prefix; a failure is reported and the others still run. */
async function eachContainer(verb: string, c: CriClient, prefixes: string[], fn: (id: string) => Promise<string>): Promise<number> {
  let code = EXIT_OK;
  for (const prefix of prefixes) {
    try {
      process.stdout.write(`${await fn(await resolveContainer(c, prefix))}\n`);
    } catch (e) {
      process.stderr.write(`sandlot ${verb}: ${errorText(e)}\n`);
      code = EXIT_FAILURE;
    }
  }
  return code;
}

export const stopVerb: Verb = {
  name: 'stop',
  summary: `stop containers: stop signal, then SIGKILL after -t SECONDS (default ${DEFAULT_STOP_TIMEOUT_S})`,
  usage: 'CONTAINER...',
  options: { ...SOCKET_OPTION, timeout: { type: 'string', short: 't' } },
  async run(values, positionals) {
    const timeout = values.timeout === undefined ? DEFAULT_STOP_TIMEOUT_S : Number(values.timeout);
    if (positionals.length === 0 || !Number.isInteger(timeout) || timeout < 0) {
      process.stderr.write('usage: sandlot stop [--socket PATH] [-t SECONDS] CONTAINER...\n');
      return EXIT_USAGE;
    }
    return withClient(values, (c) =>
      eachContainer('stop', c, positionals, async (id) => {
        await c.runtimeCall('StopContainer', { container_id: id, timeout }, { timeoutMs: timeout * 1000 + STOP_SLACK_MS });
        return id;
      }),
    );
  },
};

export const rmVerb: Verb = {
  name: 'rm',
  summary: 'remove containers; a running one only with -f',
  usage: 'CONTAINER...',
  options: { ...SOCKET_OPTION, force: { type: 'boolean', short: 'f' } },
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('usage: sandlot rm [--socket PATH] [-f] CONTAINER...\n');
      return EXIT_USAGE;
    }
    return withClient(values, (c) =>
      eachContainer('rm', c, positionals, async (id) => {
        const st = await containerStatus(c, id);
        // The CRI removes a running container by force; a person asks for that with -f.
        if (st.state === 'CONTAINER_RUNNING' && !values.force) {
          throw new Error(`container "${id}" is running: stop it first (sandlot stop) or use -f`);
        }
        await c.runtimeCall('RemoveContainer', { container_id: id }, { timeoutMs: STOP_SLACK_MS });
        return id;
      }),
    );
  },
};
