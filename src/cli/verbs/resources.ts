// stats, statsp, update, events: what containers use, changing their limits, and the
// container event stream, in crictl's spirit.
import type { CriClient } from '../client.js';
import type { RequestInputOf, ResponseOutputOf } from '../../cri/handler-types.js';
import { shortId } from '../cri-tables.js';
import { parseLabels } from '../cri-tables.js';
import { errorText, LIST_TIMEOUT_MS, resolveContainer, resolvePod } from '../lookup.js';
import { formatDoc, outputFormat } from '../output.js';
import { EXIT_FAILURE, EXIT_OK, OUTPUT_OPTION, SOCKET_OPTION, table, UsageError, withClient, type Verb } from '../verb.js';
import { humanSize } from './image.js';

/** Without a rate from the daemon (its first sample), a second sample this much later gives one. */
const SAMPLE_GAP_MS = 1_000;

type ContainerStatsFilter = NonNullable<RequestInputOf<'ListContainerStats'>['filter']>;
type ContainerStats = ResponseOutputOf<'ListContainerStats'>['stats'][number];
type PodStatsFilter = NonNullable<RequestInputOf<'ListPodSandboxStats'>['filter']>;
type PodStats = ResponseOutputOf<'ListPodSandboxStats'>['stats'][number];
type LinuxResources = NonNullable<RequestInputOf<'UpdateContainerResources'>['linux']>;
type ContainerEvent = ResponseOutputOf<'GetContainerEvents'>;
/** The fields of a decoded CpuUsage the CPU column reads. */
interface CpuSample {
  timestamp: string;
  usage_nano_cores: { value: string } | null;
  usage_core_nano_seconds: { value: string } | null;
}

const num = (v: unknown): number => Number((v as { value?: unknown } | null | undefined)?.value ?? 0);

/** CPU % of one core, from usage_nano_cores, else from two cumulative samples. */
function cpuPercent(cur: CpuSample | null | undefined, prev: CpuSample | null | undefined): string {
  if (!cur) return '-';
  if (cur.usage_nano_cores) return (num(cur.usage_nano_cores) / 1e7).toFixed(2);
  if (!prev) return '-';
  const dt = Number(BigInt(cur.timestamp || 0) - BigInt(prev.timestamp || 0));
  if (dt <= 0) return '-';
  return (((num(cur.usage_core_nano_seconds) - num(prev.usage_core_nano_seconds)) / dt) * 100).toFixed(2);
}

async function sampled<T>(
  once: () => Promise<T[]>,
  cpu: (s: T) => CpuSample | null | undefined,
  id: (s: T) => string,
): Promise<{ now: T[]; before: Map<string, T> }> {
  let now = await once();
  const before = new Map<string, T>();
  if (now.some((s) => cpu(s) && !cpu(s)!.usage_nano_cores)) {
    for (const s of now) before.set(id(s), s);
    await new Promise((r) => setTimeout(r, SAMPLE_GAP_MS));
    now = await once();
  }
  return { now, before };
}

const STATS_OPTIONS = {
  ...SOCKET_OPTION,
  ...OUTPUT_OPTION,
  label: { type: 'string' as const, multiple: true, value: 'KEY=VALUE', description: 'only those with this label (repeatable)' },
};

export const statsVerb: Verb = {
  name: 'stats',
  summary: 'show CPU, memory and writable-layer use of running containers (CONTAINER, NAME, CPU %, MEM, DISK, INODES)',
  usage: '[CONTAINER...]',
  options: { ...STATS_OPTIONS, pod: { type: 'string', short: 'p', value: 'POD', description: 'only the containers of this pod' } },
  async run(values, positionals) {
    const format = outputFormat(values, 'table');
    const labels = parseLabels('--label', (values.label as string[] | undefined) ?? []);
    const { now, before } = await withClient(values, async (c) => {
      const filter: ContainerStatsFilter = {};
      if (Object.keys(labels).length > 0) filter.label_selector = labels;
      if (values.pod !== undefined) filter.pod_sandbox_id = await resolvePod(c, String(values.pod));
      const ids = new Set(await Promise.all(positionals.map((p) => resolveContainer(c, p))));
      const once = async (): Promise<ContainerStats[]> =>
        (await c.runtimeCall('ListContainerStats', { filter }, { timeoutMs: LIST_TIMEOUT_MS })).stats.filter(
          (s) => ids.size === 0 || ids.has(String(s.attributes?.id)),
        );
      return sampled(
        once,
        (s) => s.cpu,
        (s) => String(s.attributes?.id),
      );
    });
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, { stats: now }));
      return EXIT_OK;
    }
    const rows = now.map((s) => {
      const id = String(s.attributes?.id);
      return [
        shortId(id),
        String(s.attributes?.metadata?.name ?? ''),
        cpuPercent(s.cpu, before.get(id)?.cpu),
        s.memory ? humanSize(num(s.memory.working_set_bytes)) : '-',
        s.writable_layer ? humanSize(num(s.writable_layer.used_bytes)) : '-',
        s.writable_layer ? String(num(s.writable_layer.inodes_used)) : '-',
      ];
    });
    process.stdout.write(table(['CONTAINER', 'NAME', 'CPU %', 'MEM', 'DISK', 'INODES'], rows));
    return EXIT_OK;
  },
};

export const statspVerb: Verb = {
  name: 'statsp',
  summary: 'show CPU, memory and network use of pods (POD, POD ID, CPU %, MEM, PROCESSES)',
  usage: '[POD...]',
  options: STATS_OPTIONS,
  async run(values, positionals) {
    const format = outputFormat(values, 'table');
    const labels = parseLabels('--label', (values.label as string[] | undefined) ?? []);
    const { now, before } = await withClient(values, async (c) => {
      const filter: PodStatsFilter = {};
      if (Object.keys(labels).length > 0) filter.label_selector = labels;
      const ids = new Set(await Promise.all(positionals.map((p) => resolvePod(c, p))));
      const once = async (): Promise<PodStats[]> =>
        (await c.runtimeCall('ListPodSandboxStats', { filter }, { timeoutMs: LIST_TIMEOUT_MS })).stats.filter(
          (s) => ids.size === 0 || ids.has(String(s.attributes?.id)),
        );
      return sampled(
        once,
        (s) => s.linux?.cpu,
        (s) => String(s.attributes?.id),
      );
    });
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, { stats: now }));
      return EXIT_OK;
    }
    const rows = now.map((s) => {
      const id = String(s.attributes?.id);
      return [
        String(s.attributes?.metadata?.name ?? ''),
        shortId(id),
        cpuPercent(s.linux?.cpu, before.get(id)?.linux?.cpu),
        s.linux?.memory ? humanSize(num(s.linux.memory.working_set_bytes)) : '-',
        s.linux?.process ? String(num(s.linux.process.process_count)) : '-',
      ];
    });
    process.stdout.write(table(['POD', 'POD ID', 'CPU %', 'MEM', 'PROCESSES'], rows));
    return EXIT_OK;
  },
};

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `--memory 64m` (docker's units: b, k, m, g, t, powers of 1024) into bytes. */
export function parseMemory(flag: string, v: string): number {
  const m = /^(\d+)([bkmgt]?)b?$/i.exec(v.trim());
  if (!m) throw new UsageError(`${flag} ${JSON.stringify(v)}: expected bytes or a size such as 64m or 1g`);
  return Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
}

function wholeNumber(flag: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} ${JSON.stringify(v)}: expected a whole number`);
  return n;
}

export const updateVerb: Verb = {
  name: 'update',
  summary: "change running containers' CPU and memory limits (UpdateContainerResources)",
  usage: 'CONTAINER...',
  options: {
    ...SOCKET_OPTION,
    'cpu-period': { type: 'string', value: 'MICROSECONDS', description: 'CFS period' },
    'cpu-quota': { type: 'string', value: 'MICROSECONDS', description: 'CFS quota per period' },
    'cpu-shares': { type: 'string', value: 'SHARES', description: 'relative CPU weight' },
    'cpuset-cpus': { type: 'string', value: 'CPUS', description: 'CPUs the container may run on (0-1, 0,2)' },
    'cpuset-mems': { type: 'string', value: 'NODES', description: 'memory nodes the container may use' },
    memory: { type: 'string', short: 'm', value: 'SIZE', description: 'memory limit in bytes or with a unit (64m, 1g)' },
  },
  async run(values, positionals) {
    if (positionals.length === 0) throw new UsageError('expected one or more CONTAINERs');
    const linux: LinuxResources = {};
    if (values['cpu-period'] !== undefined) linux.cpu_period = wholeNumber('--cpu-period', values['cpu-period']);
    if (values['cpu-quota'] !== undefined) linux.cpu_quota = wholeNumber('--cpu-quota', values['cpu-quota']);
    if (values['cpu-shares'] !== undefined) linux.cpu_shares = wholeNumber('--cpu-shares', values['cpu-shares']);
    if (values['cpuset-cpus'] !== undefined) linux.cpuset_cpus = String(values['cpuset-cpus']);
    if (values['cpuset-mems'] !== undefined) linux.cpuset_mems = String(values['cpuset-mems']);
    if (values.memory !== undefined) linux.memory_limit_in_bytes = parseMemory('--memory', String(values.memory));
    if (Object.keys(linux).length === 0)
      throw new UsageError('nothing to update: give at least one of --cpu-period, --cpu-quota, --cpu-shares, --cpuset-cpus, --cpuset-mems, --memory');
    return withClient(values, async (c) => {
      let code = EXIT_OK;
      for (const ref of positionals) {
        try {
          const id = await resolveContainer(c, ref);
          await c.runtimeCall('UpdateContainerResources', { container_id: id, linux }, { timeoutMs: LIST_TIMEOUT_MS });
          process.stdout.write(`${id}\n`);
        } catch (e) {
          process.stderr.write(`sandlot update: ${errorText(e)}\n`);
          code = EXIT_FAILURE;
        }
      }
      return code;
    });
  },
};

function eventLine(ev: ContainerEvent): string {
  const ns = BigInt(ev.created_at || 0);
  const time = ns > 0n ? new Date(Number(ns / 1_000_000n)).toISOString() : '-';
  const type = ev.container_event_type.replace(/^CONTAINER_|_EVENT$/g, '').toLowerCase();
  const mine = ev.containers_statuses.find((s) => s.id === ev.container_id);
  const name = String(mine?.metadata?.name ?? ev.pod_sandbox_status?.metadata?.name ?? '');
  const pod = String(ev.pod_sandbox_status?.id ?? '');
  return `${time}  ${type.padEnd(7)}  ${shortId(ev.container_id)}  ${name}${pod && pod !== ev.container_id ? `  pod ${shortId(pod)}` : ''}`;
}

async function streamEvents(c: CriClient, format: 'json' | 'yaml' | 'table'): Promise<number> {
  const call = c.runtimeStream('GetContainerEvents', {});
  const stop = (): void => call.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    // A Readable iterates as any; each message is what the call decodes.
    for await (const ev of call as AsyncIterable<ContainerEvent>) {
      // JSON: one event per line, for jq; YAML: documents.
      if (format === 'json') process.stdout.write(`${JSON.stringify(ev)}\n`);
      else if (format === 'yaml') process.stdout.write(`---\n${formatDoc('yaml', ev)}`);
      else process.stdout.write(`${eventLine(ev)}\n`);
    }
  } catch (e) {
    if ((e as { code?: unknown }).code !== 1 /* CANCELLED: our Ctrl-C */) throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return EXIT_OK;
}

export const eventsVerb: Verb = {
  name: 'events',
  summary: 'print container and pod events as they happen (created, started, stopped, deleted) until Ctrl-C',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION },
  async run(values) {
    const format = outputFormat(values, 'table');
    return withClient(values, (c) => streamEvents(c, format));
  },
};
