// pods, stopp, rmp, inspect, inspectp: the pod verbs, in crictl's spirit. Pods are
// named by ID, unique ID prefix or name.
import { newestFirst, parseLabels, podRows, POD_HEADER } from '../cri-tables.js';
import type { RequestInputOf, ResponseOutputOf } from '../../cri/handler-types.js';
import { errorText, listPods, resolveAny, resolvePod } from '../lookup.js';
import { formatDoc, outputFormat } from '../output.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OUTPUT_OPTION, SOCKET_OPTION, table, UsageError, withClient, type Verb, type VerbValues } from '../verb.js';

/** How long a StopPodSandbox may take (the daemon kills what still runs at once, as containerd). */
export const POD_STOP_TIMEOUT_MS = 5 * 60_000;
const STATUS_TIMEOUT_MS = 30_000;

type PodFilter = NonNullable<RequestInputOf<'ListPodSandbox'>['filter']>;
const STATES: Record<string, 'SANDBOX_READY' | 'SANDBOX_NOTREADY' | undefined> = { ready: 'SANDBOX_READY', notready: 'SANDBOX_NOTREADY' };

export const podsVerb: Verb = {
  name: 'pods',
  summary: 'list pods (POD ID, CREATED, STATE, NAME, NAMESPACE, ATTEMPT, RUNTIME)',
  options: {
    ...SOCKET_OPTION,
    ...OUTPUT_OPTION,
    quiet: { type: 'boolean', short: 'q', description: 'print pod IDs only' },
    state: { type: 'string', short: 's', value: 'STATE', description: 'only pods in this state: ready or notready' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'only pods with this label (repeatable; all must match)' },
    name: { type: 'string', value: 'REGEXP', description: 'only pods whose name matches this regular expression' },
    namespace: { type: 'string', value: 'REGEXP', description: 'only pods whose namespace matches this regular expression' },
  },
  async run(values) {
    const format = outputFormat(values, 'table');
    const nameRe = regexpOf('--name', values.name);
    const nsRe = regexpOf('--namespace', values.namespace);
    const filter: PodFilter = {};
    if (values.state !== undefined) {
      const s = STATES[String(values.state).toLowerCase()];
      if (!s) {
        process.stderr.write(`sandlot pods: --state ${JSON.stringify(values.state)}: expected ready or notready\n`);
        return EXIT_USAGE;
      }
      filter.state = { state: s };
    }
    const labels = parseLabels('--label', (values.label as string[] | undefined) ?? []);
    if (Object.keys(labels).length > 0) filter.label_selector = labels;
    const pods = (await withClient(values, (c) => listPods(c, filter))).filter(
      (p) => (!nameRe || nameRe.test(String(p.metadata?.name ?? ''))) && (!nsRe || nsRe.test(String(p.metadata?.namespace ?? ''))),
    );
    if (format !== 'table') {
      process.stdout.write(formatDoc(format, { items: newestFirst(pods) }));
      return EXIT_OK;
    }
    if (values.quiet) {
      for (const p of newestFirst(pods)) process.stdout.write(`${p.id}\n`);
      return EXIT_OK;
    }
    process.stdout.write(table(POD_HEADER, podRows(pods, Date.now())));
    return EXIT_OK;
  },
};

/** A --name style filter: a regular expression, as crictl takes it. */
export function regexpOf(flag: string, v: VerbValues[string]): RegExp | undefined {
  if (v === undefined) return undefined;
  try {
    return new RegExp(String(v));
  } catch (e) {
    throw new UsageError(`${flag} ${JSON.stringify(v)}: not a regular expression: ${errorText(e)}`);
  }
}

/** Runs `fn` on each ID (with its place, `2/6`); a failure is reported and the others still run (exit 1 at the end). */
async function eachId(verb: string, ids: string[], fn: (id: string, place: string) => Promise<string>): Promise<number> {
  let code = EXIT_OK;
  for (const [i, prefix] of ids.entries()) {
    try {
      process.stdout.write(`${await fn(prefix, `${i + 1}/${ids.length}`)}\n`);
    } catch (e) {
      process.stderr.write(`sandlot ${verb}: ${errorText(e)}\n`);
      code = EXIT_FAILURE;
    }
  }
  return code;
}

export const stoppVerb: Verb = {
  name: 'stopp',
  summary: 'stop pods (their containers, infra and network), named by ID, ID prefix or name',
  usage: 'POD...',
  options: SOCKET_OPTION,
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('usage: sandlot stopp [--socket PATH] POD...\n');
      return EXIT_USAGE;
    }
    return withClient(values, (c) =>
      eachId('stopp', positionals, async (prefix) => {
        const id = await resolvePod(c, prefix);
        await c.runtimeCall('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: POD_STOP_TIMEOUT_MS });
        return `Stopped sandbox ${id}`;
      }),
    );
  },
};

export const rmpVerb: Verb = {
  name: 'rmp',
  summary: 'remove pods; a ready pod only with -f (stopped first)',
  usage: 'POD...',
  options: { ...SOCKET_OPTION, force: { type: 'boolean', short: 'f', description: 'stop a ready pod first instead of refusing' } },
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('usage: sandlot rmp [--socket PATH] [-f] POD...\n');
      return EXIT_USAGE;
    }
    return withClient(values, (c) =>
      eachId('rmp', positionals, async (prefix, place) => {
        const id = await resolvePod(c, prefix);
        const st = await c.runtimeCall('PodSandboxStatus', { pod_sandbox_id: id }, { timeoutMs: STATUS_TIMEOUT_MS });
        if (st.status?.state === 'SANDBOX_READY') {
          if (!values.force) throw new Error(`pod "${id}" is ready: stop it first (sandlot stopp) or use -f`);
          // Progress on stderr (stdout keeps one line per removed pod, for scripts).
          process.stderr.write(`Stopping sandbox ${id} (${place}) ${st.status.metadata?.name ?? ''}\n`);
          await c.runtimeCall('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: POD_STOP_TIMEOUT_MS });
        }
        await c.runtimeCall('RemovePodSandbox', { pod_sandbox_id: id }, { timeoutMs: POD_STOP_TIMEOUT_MS });
        return `Removed sandbox ${id}`;
      }),
    );
  },
};

/** A CRI `info` map (JSON documents in strings) with each value parsed; what is not JSON stays a string. */
export function parseInfo(raw: Record<string, string> | null | undefined): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    try {
      info[k] = JSON.parse(v) as unknown;
    } catch {
      info[k] = v;
    }
  }
  return info;
}

/** Verbose status with the info strings (JSON from the daemon) parsed, as crictl inspect shows it. */
type StatusAnswer = ResponseOutputOf<'PodSandboxStatus'> | ResponseOutputOf<'ContainerStatus'>;

/** What inspect and inspectp print: the status as decoded and the info map parsed. */
export interface InspectView {
  status: StatusAnswer['status'];
  info: Record<string, unknown>;
}

export function inspectView(res: StatusAnswer): InspectView {
  return { status: res.status, info: parseInfo(res.info) };
}

/** The few fields `-o table` shows of a verbose status, as crictl's inspect table does. */
function summaryRows(view: InspectView): string[][] {
  const st = view.status;
  const rows: [string, string | number | undefined][] = [
    ['ID', st?.id],
    ['Name', st?.metadata?.name],
    ['State', st?.state],
    ['Created', st?.created_at ? new Date(Number(BigInt(st.created_at) / 1_000_000n)).toISOString() : ''],
  ];
  if (st && 'image' in st && st.image) rows.push(['Image', st.image.user_specified_image || st.image.image], ['Exit code', st.exit_code]);
  if (st && 'network' in st && st.network?.ip) rows.push(['IP', st.network.ip]);
  return rows.map(([k, v]) => [k, String(v ?? '')]);
}

async function inspectOne(values: VerbValues, ref: string, only: 'pod' | undefined): Promise<number> {
  const format = outputFormat(values, 'json');
  const view = await withClient(values, async (c) => {
    const found = only === 'pod' ? { kind: 'pod' as const, id: await resolvePod(c, ref) } : await resolveAny(c, ref);
    const res =
      found.kind === 'pod'
        ? await c.runtimeCall('PodSandboxStatus', { pod_sandbox_id: found.id, verbose: true }, { timeoutMs: STATUS_TIMEOUT_MS })
        : await c.runtimeCall('ContainerStatus', { container_id: found.id, verbose: true }, { timeoutMs: STATUS_TIMEOUT_MS });
    return inspectView(res);
  });
  process.stdout.write(format === 'table' ? table(['FIELD', 'VALUE'], summaryRows(view)) : formatDoc(format, view));
  return EXIT_OK;
}

export const inspectVerb: Verb = {
  name: 'inspect',
  summary: "show a container's verbose status (or a pod's, when no container has that name or ID)",
  usage: 'CONTAINER',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('expected one CONTAINER (ID, ID prefix or name)');
    return inspectOne(values, positionals[0], undefined);
  },
};

export const inspectpVerb: Verb = {
  name: 'inspectp',
  summary: "show a pod's verbose status",
  usage: 'POD',
  options: { ...SOCKET_OPTION, ...OUTPUT_OPTION },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('expected one POD (ID, ID prefix or name)');
    return inspectOne(values, positionals[0], 'pod');
  },
};
