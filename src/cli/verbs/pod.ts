// pods, stopp, rmp, inspect: the pod verbs, in crictl's spirit.
import { newestFirst, parseLabels, podRows, POD_HEADER } from '../cri-tables.js';
import type { CriMessage } from '../client.js';
import { errorText, listPods, resolveAny, resolvePod } from '../lookup.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SOCKET_OPTION, table, withClient, type Verb } from '../verb.js';

/** Stopping a pod stops its containers with their grace first. */
export const POD_STOP_TIMEOUT_MS = 5 * 60_000;
const STATUS_TIMEOUT_MS = 30_000;

const STATES: Record<string, string> = { ready: 'SANDBOX_READY', notready: 'SANDBOX_NOTREADY' };

export const podsVerb: Verb = {
  name: 'pods',
  summary: 'list pods (POD ID, CREATED, STATE, NAME, NAMESPACE, ATTEMPT, RUNTIME)',
  options: {
    ...SOCKET_OPTION,
    quiet: { type: 'boolean', short: 'q' },
    state: { type: 'string' },
    label: { type: 'string', multiple: true },
  },
  async run(values) {
    const filter: CriMessage = {};
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
    const pods = await withClient(values, (c) => listPods(c, filter));
    if (values.quiet) {
      for (const p of newestFirst(pods)) process.stdout.write(`${p.id}\n`);
      return EXIT_OK;
    }
    process.stdout.write(table(POD_HEADER, podRows(pods, Date.now())));
    return EXIT_OK;
  },
};

/** Runs `fn` on each ID; a failure is reported and the others still run (exit 1 at the end). */
async function eachId(verb: string, ids: string[], fn: (id: string) => Promise<string>): Promise<number> {
  let code = EXIT_OK;
  for (const prefix of ids) {
    try {
      process.stdout.write(`${await fn(prefix)}\n`);
    } catch (e) {
      process.stderr.write(`sandlot ${verb}: ${errorText(e)}\n`);
      code = EXIT_FAILURE;
    }
  }
  return code;
}

export const stoppVerb: Verb = {
  name: 'stopp',
  summary: 'stop pods (their containers, infra and network); ID prefixes are fine',
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
  options: { ...SOCKET_OPTION, force: { type: 'boolean', short: 'f' } },
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('usage: sandlot rmp [--socket PATH] [-f] POD...\n');
      return EXIT_USAGE;
    }
    return withClient(values, (c) =>
      eachId('rmp', positionals, async (prefix) => {
        const id = await resolvePod(c, prefix);
        const st = await c.runtimeCall('PodSandboxStatus', { pod_sandbox_id: id }, { timeoutMs: STATUS_TIMEOUT_MS });
        if (st.status?.state === 'SANDBOX_READY') {
          if (!values.force) throw new Error(`pod "${id}" is ready: stop it first (sandlot stopp) or use -f`);
          await c.runtimeCall('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: POD_STOP_TIMEOUT_MS });
        }
        await c.runtimeCall('RemovePodSandbox', { pod_sandbox_id: id }, { timeoutMs: POD_STOP_TIMEOUT_MS });
        return `Removed sandbox ${id}`;
      }),
    );
  },
};

/** Verbose status with the info strings (JSON from the daemon) parsed, as crictl inspect shows it. */
export function inspectView(res: CriMessage): CriMessage {
  const info: CriMessage = {};
  for (const [k, v] of Object.entries((res.info ?? {}) as Record<string, string>)) {
    try {
      info[k] = JSON.parse(v);
    } catch {
      info[k] = v;
    }
  }
  return { status: res.status, info };
}

export const inspectVerb: Verb = {
  name: 'inspect',
  summary: "show a pod's or container's verbose status as JSON",
  usage: 'ID',
  options: SOCKET_OPTION,
  async run(values, positionals) {
    if (positionals.length !== 1) {
      process.stderr.write('usage: sandlot inspect [--socket PATH] ID\n');
      return EXIT_USAGE;
    }
    const view = await withClient(values, async (c) => {
      const found = await resolveAny(c, positionals[0]!);
      const res =
        found.kind === 'pod'
          ? await c.runtimeCall('PodSandboxStatus', { pod_sandbox_id: found.id, verbose: true }, { timeoutMs: STATUS_TIMEOUT_MS })
          : await c.runtimeCall('ContainerStatus', { container_id: found.id, verbose: true }, { timeoutMs: STATUS_TIMEOUT_MS });
      return inspectView(res);
    });
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return EXIT_OK;
  },
};
