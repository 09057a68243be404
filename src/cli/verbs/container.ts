// ps, logs, stop, rm: the container verbs, in crictl's spirit (run lives in run.ts).
// Containers are named by ID, unique ID prefix or name.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../errors.js';
import type { CriClient } from '../client.js';
import type { RequestInputOf, ResponseOutputOf } from '../../cri/handler-types.js';
import { CriLogDecoder, LineJoiner, recordText, tailLines, type CriLogRecord, type LogLine } from '../cri-log.js';
import { containerRows, CONTAINER_HEADER, imageNames, newestFirst, parseLabels } from '../cri-tables.js';
import { ContainerExitWatch } from '../exit-watch.js';
import { parseSince } from '../human-time.js';
import { followCriLog } from '../log-follow.js';
import { errorText, listContainers, LIST_TIMEOUT_MS, resolveContainer, resolvePod } from '../lookup.js';
import { formatDoc, outputFormat } from '../output.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OUTPUT_OPTION, SOCKET_OPTION, table, UsageError, withClient, type Verb } from '../verb.js';
import { regexpOf } from './pod.js';

export const DEFAULT_STOP_TIMEOUT_S = 10;
type ContainerFilter = NonNullable<RequestInputOf<'ListContainers'>['filter']>;
type ContainerStateName = ResponseOutputOf<'ContainerStatus'>['status'] extends infer S ? (NonNullable<S> extends { state: infer T } ? T : never) : never;

const CONTAINER_STATES: Record<string, ContainerStateName | undefined> = {
  created: 'CONTAINER_CREATED',
  running: 'CONTAINER_RUNNING',
  exited: 'CONTAINER_EXITED',
  unknown: 'CONTAINER_UNKNOWN',
};
const STATUS_TIMEOUT_MS = 30_000;
/** The daemon's own grace comes on top of what the person asked for. */
const STOP_SLACK_MS = 60_000;

/** The decoded status of a container (null fields: the daemon sent none). */
export type ContainerStatusView = Partial<NonNullable<ResponseOutputOf<'ContainerStatus'>['status']>>;

export async function containerStatus(c: CriClient, id: string): Promise<ContainerStatusView> {
  const res = await c.runtimeCall('ContainerStatus', { container_id: id }, { timeoutMs: STATUS_TIMEOUT_MS });
  return res.status ?? {};
}

export const psVerb: Verb = {
  name: 'ps',
  summary: 'list running containers (-a: all) (CONTAINER, IMAGE, CREATED, STATE, NAME, ATTEMPT, POD ID)',
  options: {
    ...SOCKET_OPTION,
    ...OUTPUT_OPTION,
    all: { type: 'boolean', short: 'a', description: 'all containers, not only running ones' },
    quiet: { type: 'boolean', short: 'q', description: 'print container IDs only' },
    pod: { type: 'string', short: 'p', value: 'POD', description: 'only the containers of this pod (ID, ID prefix or name)' },
    name: { type: 'string', value: 'REGEXP', description: 'only containers whose name matches this regular expression' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'only containers with this label (repeatable; all must match)' },
    state: { type: 'string', short: 's', value: 'STATE', description: 'only containers in this state: created, running, exited or unknown (implies -a)' },
  },
  async run(values) {
    const format = outputFormat(values, 'table');
    const nameRe = regexpOf('--name', values.name);
    const labels = parseLabels('--label', (values.label as string[] | undefined) ?? []);
    let state: ContainerStateName | undefined;
    if (values.state !== undefined) {
      state = CONTAINER_STATES[String(values.state).toLowerCase()];
      if (!state) throw new UsageError(`--state ${JSON.stringify(values.state)}: expected created, running, exited or unknown`);
    }
    const { items, names } = await withClient(values, async (c) => {
      const filter: ContainerFilter = {};
      if (state) filter.state = { state };
      else if (!values.all) filter.state = { state: 'CONTAINER_RUNNING' };
      if (Object.keys(labels).length > 0) filter.label_selector = labels;
      if (values.pod !== undefined) filter.pod_sandbox_id = await resolvePod(c, String(values.pod));
      const found = (await listContainers(c, filter)).filter((x) => !nameRe || nameRe.test(String(x.metadata?.name ?? '')));
      if (values.quiet || format !== 'table' || found.length === 0) return { items: found, names: imageNames([]) };
      const images = await c.imageCall('ListImages', {}, { timeoutMs: LIST_TIMEOUT_MS });
      return { items: found, names: imageNames(images.images) };
    });
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, { containers: newestFirst(items) }));
      return EXIT_OK;
    }
    if (values.quiet) {
      for (const x of newestFirst(items)) process.stdout.write(`${x.id}\n`);
      return EXIT_OK;
    }
    process.stdout.write(table(CONTAINER_HEADER, containerRows(items, Date.now(), names)));
    return EXIT_OK;
  },
};

/** What `logs` puts on the terminal: --timestamps prefixes each line with its time, --since drops older lines. */
class LogPrinter {
  /** Per stream: the next record starts a line (a P record leaves it mid-line). */
  private readonly atLineStart = new Map<string, boolean>();
  /** Per stream: the line in progress is older than --since (its parts are dropped too). */
  private readonly dropping = new Map<string, boolean>();

  constructor(
    private readonly timestamps: boolean,
    private readonly sinceMs: number | undefined,
  ) {}

  private old(time: string): boolean {
    if (this.sinceMs === undefined) return false;
    const ms = Date.parse(time);
    return !Number.isNaN(ms) && ms < this.sinceMs;
  }

  line(l: LogLine): void {
    if (this.old(l.time)) return;
    // A whole line; partial records go through record() and carry no newline.
    (l.stream === 'stderr' ? process.stderr : process.stdout).write(`${this.timestamps && l.time ? `${l.time} ` : ''}${l.text}\n`);
  }

  record(r: CriLogRecord): void {
    const start = this.atLineStart.get(r.stream) ?? true;
    if (start) this.dropping.set(r.stream, this.old(r.time));
    this.atLineStart.set(r.stream, !r.partial);
    if (this.dropping.get(r.stream)) return;
    (r.stream === 'stderr' ? process.stderr : process.stdout).write(`${start && this.timestamps ? `${r.time} ` : ''}${recordText(r)}`);
  }
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
  options: {
    ...SOCKET_OPTION,
    follow: { type: 'boolean', short: 'f', description: 'keep printing what the container writes until it exits (or Ctrl-C)' },
    tail: { type: 'string', value: 'N', description: 'only the last N lines of what is there now (default: all)' },
    timestamps: { type: 'boolean', short: 't', description: 'show the time of each line (RFC 3339, as the log holds it)' },
    since: { type: 'string', value: 'TIME', description: 'only lines since TIME: a duration back from now (10m, 1h30m) or an RFC 3339 time' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) {
      process.stderr.write('usage: sandlot logs [--socket PATH] [-f] [-t] [--tail N] [--since TIME] CONTAINER\n');
      return EXIT_USAGE;
    }
    const tail = values.tail === undefined ? -1 : Number(values.tail);
    if (!Number.isInteger(tail)) {
      process.stderr.write(`sandlot logs: --tail ${JSON.stringify(values.tail)}: expected a whole number\n`);
      return EXIT_USAGE;
    }
    const sinceMs = values.since === undefined ? undefined : parseSince(String(values.since), Date.now());
    if (values.since !== undefined && sinceMs === undefined) {
      throw new UsageError(`--since ${JSON.stringify(values.since)}: expected a duration (10m, 1h30m, 90s) or an RFC 3339 time`);
    }
    const out = new LogPrinter(Boolean(values.timestamps), sinceMs);
    return withClient(values, async (c) => {
      const id = await resolveContainer(c, positionals[0]);
      const st = await containerStatus(c, id);
      const logPath = String(st.log_path ?? '');
      if (!path.isAbsolute(logPath)) {
        throw new Error(`reading the log of container "${id}": its log path ${JSON.stringify(logPath)} is not absolute`);
      }
      // With -f, the exit watch starts before the read: an exit while reading is not missed.
      const watch = values.follow ? ContainerExitWatch.start(c, id) : undefined;
      try {
        const now = await readLog(logPath);
        for (const l of tailLines(now.lines, tail)) out.line(l);
        // Partial records after the last whole line: shown as written (no newline of
        // their own), and with -f their line goes on as the container writes it.
        for (const r of now.pending) out.record(r);
        if (!watch) return EXIT_OK;
        const ac = new AbortController();
        const onSig = (): void => ac.abort();
        process.once('SIGINT', onSig);
        try {
          // The exit comes from GetContainerEvents, not from asking ContainerStatus at every EOF.
          await followCriLog({
            path: logPath,
            startOffset: now.offset,
            onRecord: (r) => out.record(r),
            signal: ac.signal,
            isDone: () => Promise.resolve(watch.exited),
          });
        } finally {
          process.off('SIGINT', onSig);
        }
      } finally {
        watch?.close();
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
  options: {
    ...SOCKET_OPTION,
    timeout: { type: 'string', short: 't', value: 'SECONDS', description: `grace before SIGKILL (default ${DEFAULT_STOP_TIMEOUT_S})` },
  },
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
  options: { ...SOCKET_OPTION, force: { type: 'boolean', short: 'f', description: 'remove a running container too (it is killed)' } },
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
