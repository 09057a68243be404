// The Helm chart, rendered by the real helm v3.18.0 (`make test-deps`): lint --strict is
// clean; default and non-default values render objects that are valid against the
// Kubernetes schemas (kubernetes-models, offline); every host path the daemon works in
// is mounted; the ConfigMap's config is one `sandlot config check` accepts; values.schema
// rejects typos and keys the chart owns. mode=installer renders the installer DaemonSet
// (host / at /host, hostPID, NODE_NAME, install or uninstall) with RBAC for exactly its
// node calls; values.image is what `make image` names.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { validateConfig } from '../../../src/config/load.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { REPO_ROOT } from '../../helpers/daemon.js';
import { IMAGE_NAME } from '../../../src/install/build-image.js';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { IRuntimeClass } from 'kubernetes-models/node.k8s.io/v1/RuntimeClass';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { CHART, helm, render, renderRaw, validateObject, type K8sObject } from './helm.js';

const execFileAsync = promisify(execFile);
/** The parts of values.yaml the tests read. */
interface Values {
  image: { repository: string; tag: string };
  hostPaths: { kubeletDir: string; podLogs: string; cgroup: string };
  runtimeClasses: Array<{ name: string; handler: string }>;
}
const valuesDoc = (): unknown => YAML.parse(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
const values = (): Values => valuesDoc() as Values;
const schema = (): { properties: { config: { properties: Record<string, unknown> } } } =>
  JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as { properties: { config: { properties: Record<string, unknown> } } };
/** The daemon keys the chart writes itself (from hostPaths, metrics, conmonCgroup). */
const CHART_OWNED = ['socket_path', 'root_dir', 'state_dir', 'cni_conf_dir', 'cni_bin_dirs', 'metrics_address', 'conmon_cgroup'];

const byKind = (objs: K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o.kind === kind);
/** prometheus-operator's ServiceMonitor, as far as the tests read it (no schema in kubernetes-models). */
interface ServiceMonitor {
  apiVersion: string;
  metadata: { labels: Record<string, string> };
  spec: { endpoints: Array<{ port: string }>; selector: { matchLabels: Record<string, string> } };
}
interface Kinds {
  DaemonSet: IDaemonSet;
  ConfigMap: IConfigMap;
  Service: IService;
  ServiceAccount: IServiceAccount;
  RuntimeClass: IRuntimeClass;
  ClusterRole: IClusterRole;
  ClusterRoleBinding: IClusterRoleBinding;
  ServiceMonitor: ServiceMonitor;
}
function one<K extends keyof Kinds>(objs: K8sObject[], kind: K): Kinds[K] {
  const found = byKind(objs, kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as unknown as Kinds[K];
}
const podSpec = (ds: IDaemonSet): IPodSpec => ds.spec!.template.spec!;
const container = (ds: IDaemonSet): IContainer => podSpec(ds).containers[0];
const renderedConfig = (objs: K8sObject[]): Record<string, unknown> =>
  (YAML.parse(one(objs, 'ConfigMap').data!['config.yaml']) as Record<string, unknown> | null) ?? {};

async function configCheck(config: Record<string, unknown>): Promise<{ code: number; out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-chart-cfg-'));
  try {
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, YAML.stringify(config));
    const r = await execFileAsync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'config', 'check', file], { cwd: REPO_ROOT });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: err.code ?? 1, out: err.stderr ?? '' };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every container mount path is unique and each volume it names exists. */
function checkMounts(ds: IDaemonSet): Map<string, IVolumeMount & { volume: IVolume }> {
  const spec = podSpec(ds);
  const volumes = new Map<string, IVolume>((spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts = new Map<string, IVolumeMount & { volume: IVolume }>();
  for (const m of spec.containers[0].volumeMounts ?? []) {
    assert.ok(!mounts.has(m.mountPath), `mountPath ${m.mountPath} appears once`);
    assert.ok(volumes.has(m.name), `volume ${m.name} exists`);
    mounts.set(m.mountPath, { ...m, volume: volumes.get(m.name)! });
  }
  return mounts;
}

test('Chart.yaml and values.yaml parse and name the chart; kubeVersion is set', () => {
  const chart = YAML.parse(fs.readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { name: string; apiVersion: string; kubeVersion: string };
  assert.equal(chart.name, 'sandlot');
  assert.equal(chart.apiVersion, 'v2');
  assert.match(chart.kubeVersion, /^>=1\.\d+/);
  assert.ok(Array.isArray(values().runtimeClasses) && values().runtimeClasses.length > 0);
});

test('helm is v3.18.0 and `helm lint --strict` is clean, with default and non-default values', async () => {
  const v = await helm(['version', '--short']);
  assert.match(v.stdout, /^v3\.18\.0/);
  const lint = await helm(['lint', '--strict', CHART]);
  assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  const lint2 = await helm(['lint', '--strict', CHART, '--set', 'metrics.enabled=false', '--set', 'config=null']);
  assert.equal(lint2.code, 0, lint2.stdout + lint2.stderr);
  for (const extra of [[], ['--set', 'installer.uninstall=true', '--set', 'installer.purge=true']]) {
    const lint3 = await helm(['lint', '--strict', CHART, '--set', 'mode=installer', ...extra]);
    assert.equal(lint3.code, 0, lint3.stdout + lint3.stderr);
  }
  const old = await renderRaw({}, ['--kube-version', '1.25.0']);
  assert.notEqual(old.code, 0);
  assert.match(old.stderr, /requires kubeVersion/);
});

test('the default render: ConfigMap, DaemonSet and one RuntimeClass per handler, all valid Kubernetes objects', async () => {
  const objs = await render();
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'ConfigMap/rel-sandlot',
    'DaemonSet/rel-sandlot',
    'RuntimeClass/runc',
    'RuntimeClass/runsc',
  ]);
  for (const o of objs) validateObject(o);
  const c = container(one(objs, 'DaemonSet'));
  assert.ok(c.startupProbe && c.livenessProbe && c.readinessProbe, 'startup, liveness and readiness probes');
  assert.equal(c.livenessProbe.httpGet?.host, '127.0.0.1');
  assert.equal(c.livenessProbe.httpGet?.path, '/metrics');
  assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, 'resource requests');
  assert.equal(c.resources.limits, undefined, 'no limits on the node runtime');
});

test("every host path the daemon works in is mounted at the same path; the image's /usr/lib/cni is not hidden", async () => {
  const objs = await render();
  const mounts = checkMounts(one(objs, 'DaemonSet'));
  const cfg = renderedConfig(objs);
  const hp = values().hostPaths;
  for (const dir of [
    path.dirname(String(cfg.socket_path)),
    String(cfg.root_dir),
    String(cfg.state_dir),
    hp.kubeletDir,
    String(cfg.cni_conf_dir),
    hp.podLogs,
    hp.cgroup,
  ]) {
    const m = mounts.get(dir);
    assert.ok(m, `${dir} is mounted`);
    assert.equal(m.volume.hostPath?.path, dir, `${dir} comes from the same host path`);
  }
  for (const dir of [cfg.socket_path, cfg.root_dir, cfg.state_dir, hp.kubeletDir].map((d, i) => (i === 0 ? path.dirname(String(d)) : String(d)))) {
    assert.equal(mounts.get(dir)?.mountPropagation, 'Bidirectional', `${dir} propagates mounts both ways`);
  }
  assert.deepEqual(cfg.cni_bin_dirs, ['/usr/lib/cni', '/opt/cni/bin'], "the image's plugins first, then the host's");
  assert.ok(!mounts.has('/usr/lib/cni'), "/usr/lib/cni stays the image's");
  assert.equal(mounts.get('/opt/cni/bin')?.readOnly, true);
});

test('the configuration the chart renders into its ConfigMap is valid for the daemon (sandlot config check), once per key', async () => {
  for (const v of [{}, { config: null }, { metrics: { enabled: false } }, { config: { log_level: 'debug', cgroup_root: '/kubepods' } }]) {
    const objs = await render(v);
    const text = one(objs, 'ConfigMap').data!['config.yaml'];
    // YAML.parse with uniqueKeys (the default) throws on a duplicate key.
    const cfg = YAML.parse(text, { uniqueKeys: true }) as Record<string, unknown>;
    const r = await configCheck(cfg);
    assert.equal(r.code, 0, `${JSON.stringify(v)}: ${r.out}`);
    const full = validateConfig({ ...defaultConfig(), ...cfg });
    assert.equal(full.socket_path, '/run/sandlot/sandlot.sock');
    assert.equal(full.conmon_cgroup, '/sandlot-conmon', "conmons leave the DaemonSet pod's cgroup");
    for (const rc of values().runtimeClasses) assert.ok(rc.handler in full.runtimes, `RuntimeClass handler ${rc.handler} is configured`);
  }
});

test('non-default values: metrics port and address applied, stateDir mounted, overhead and scheduling passed on, Service and ServiceMonitor', async () => {
  const objs = await render({
    hostPaths: { stateDir: '/run/sandlot-state', cniBinDirs: ['/opt/cni/bin', '/usr/libexec/cni'] },
    metrics: { bindAddress: '0.0.0.0', port: 9555, service: true, serviceMonitor: { enabled: true, labels: { release: 'prom' } } },
    runtimeClasses: [
      {
        name: 'gvisor',
        handler: 'runsc',
        overhead: { podFixed: { cpu: '250m', memory: '64Mi' } },
        scheduling: { nodeSelector: { 'sandlot.dev/runtime': 'true' }, tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }] },
      },
    ],
  });
  for (const o of objs) if (o.kind !== 'ServiceMonitor') validateObject(o);
  const cfg = renderedConfig(objs);
  assert.equal(cfg.metrics_address, '0.0.0.0:9555');
  assert.equal(cfg.state_dir, '/run/sandlot-state');
  assert.equal((await configCheck(cfg)).code, 0);
  const ds = one(objs, 'DaemonSet');
  const mounts = checkMounts(ds);
  assert.equal(mounts.get('/run/sandlot-state')?.mountPropagation, 'Bidirectional');
  assert.ok(mounts.has('/usr/libexec/cni'));
  const c = container(ds);
  assert.equal(c.ports?.[0]?.containerPort, 9555);
  assert.equal(c.livenessProbe?.httpGet?.port, 9555);
  const rc = one(objs, 'RuntimeClass');
  assert.deepEqual(rc.overhead, { podFixed: { cpu: '250m', memory: '64Mi' } });
  assert.deepEqual(rc.scheduling?.nodeSelector, { 'sandlot.dev/runtime': 'true' });
  assert.equal(rc.scheduling?.tolerations?.[0]?.key, 'sandbox');
  assert.equal(one(objs, 'Service').spec?.ports?.[0]?.port, 9555);
  const sm = one(objs, 'ServiceMonitor');
  assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(sm.metadata.labels.release, 'prom');
  assert.equal(sm.spec.endpoints[0].port, 'metrics');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) {
    assert.equal(one(objs, 'Service').metadata?.labels?.[k], v, `the ServiceMonitor selects the Service by ${k}`);
  }
});

test('metrics off: no port, exec probes, metrics_address ""', async () => {
  const objs = await render({ metrics: { enabled: false, service: true } });
  for (const o of objs) validateObject(o);
  assert.equal(renderedConfig(objs).metrics_address, '');
  assert.equal(byKind(objs, 'Service').length, 0);
  const c = container(one(objs, 'DaemonSet'));
  assert.equal(c.ports, undefined);
  assert.ok(c.livenessProbe?.exec);
});

test("values.schema.json rejects typos, keys the chart owns, the image's CNI dir and bad ports", async () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ config: { root_dir: '/x' } }, /root_dir/],
    [{ config: { metrics_address: '0.0.0.0:1' } }, /metrics_address/],
    [{ config: { log_levl: 'info' } }, /log_levl/],
    [{ metrics: { prot: 1 } }, /prot/],
    [{ metrics: { port: 70000 } }, /port/],
    [{ hostPaths: { cniBinDirs: ['/usr/lib/cni'] } }, /cniBinDirs/],
    [{ hostPaths: { rootDir: 'var/lib/sandlot' } }, /rootDir/],
    [{ conmonCgroup: 'conmon' }, /conmonCgroup/],
    [{ runtimeClasses: [{ name: 'x', handler: 'runsc', overhed: {} }] }, /overhed/],
    [{ image: { pullPolicy: 'Sometimes' } }, /pullPolicy/],
    [{ mode: 'both' }, /mode/],
    [{ installer: { uninstal: true } }, /uninstal/],
    [{ installer: { statusWaitSeconds: 0 } }, /statusWaitSeconds/],
  ];
  for (const [v, re] of bad) {
    const r = await renderRaw(v);
    assert.notEqual(r.code, 0, `${JSON.stringify(v)} is rejected`);
    assert.match(r.stderr, /don't meet the specifications of the schema/, JSON.stringify(v));
    assert.match(r.stderr, re, JSON.stringify(v));
  }
});

test('sandlot config check refuses a bad file with exit 2 naming the key and value', async () => {
  const r = await configCheck({ root_dri: '/x' });
  assert.equal(r.code, 2);
  assert.match(r.out, /root_dri = "\/x": unknown key/);
  const r2 = await configCheck({ conmon_cgroup: 'relative' });
  assert.equal(r2.code, 2);
  assert.match(r2.out, /conmon_cgroup = "relative"/);
});

test("the schema's config keys are daemon keys, none of them one the chart owns", () => {
  const keys = Object.keys(schema().properties.config.properties);
  const daemonKeys = Object.keys(defaultConfig());
  for (const k of keys) assert.ok(daemonKeys.includes(k), `config.${k} is a daemon key`);
  for (const k of CHART_OWNED) {
    assert.ok(daemonKeys.includes(k), `${k} is a daemon key`);
    assert.ok(!keys.includes(k), `config.${k} is set by the chart, not by values`);
  }
});

test('the offline validator does reject an invalid object (a string port, a missing image)', async () => {
  const ds = one(await render(), 'DaemonSet');
  const spec = podSpec(ds);
  const c = spec.containers[0];
  const withContainers = (containers: unknown[]): K8sObject =>
    ({ ...ds, spec: { ...ds.spec, template: { ...ds.spec!.template, spec: { ...spec, containers } } } }) as unknown as K8sObject;
  assert.throws(() => validateObject(withContainers([{ ...c, ports: [{ containerPort: 'x' }] }])), /containerPort/);
  assert.throws(() => validateObject(withContainers([{ name: 'x', image: 7 }])), /image/);
});

test('every template names only values that values.yaml defines', () => {
  const v = valuesDoc();
  const dir = path.join(CHART, 'templates');
  for (const f of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
      let cur: unknown = v;
      for (const part of m[1].split('.')) cur = (cur as Record<string, unknown> | undefined)?.[part];
      assert.notEqual(cur, undefined, `${f}: .Values.${m[1]} is defined`);
    }
  }
});

test('values.image is the image `make image` builds (src/install/build-image.ts IMAGE_NAME)', () => {
  const { repository, tag } = values().image;
  assert.equal(`${repository}:${tag}`, IMAGE_NAME);
});

test('mode=installer: ServiceAccount, ClusterRole (get/patch nodes only), binding, installer DaemonSet and RuntimeClasses, all valid; no daemon objects', async () => {
  const objs = await render({ mode: 'installer' });
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'ClusterRole/rel-sandlot-installer',
    'ClusterRoleBinding/rel-sandlot-installer',
    'DaemonSet/rel-sandlot-installer',
    'RuntimeClass/runc',
    'RuntimeClass/runsc',
    'ServiceAccount/rel-sandlot-installer',
  ]);
  for (const o of objs) validateObject(o);
  process.stdout.write(`# mode=installer renders: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}\n`);
  const role = one(objs, 'ClusterRole');
  assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }], 'the two calls of src/install/node-labeller.ts');
  const binding = one(objs, 'ClusterRoleBinding');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'rel-sandlot-installer', namespace: 'kube-system' }]);
  assert.equal(binding.roleRef.name, role.metadata?.name);
  const ds = one(objs, 'DaemonSet');
  const spec = podSpec(ds);
  assert.equal(spec.serviceAccountName, one(objs, 'ServiceAccount').metadata?.name);
  assert.equal(spec.hostPID, true, "nsenter -t 1 -m reaches the host's mount namespace");
  const c = spec.containers[0];
  assert.equal(c.image, IMAGE_NAME);
  assert.equal(c.command, undefined, "the image's entrypoint: the installer");
  assert.deepEqual(c.args, ['install', '--root', '/host', '--from', '/opt/sandlot/current', '--wait-ms', '120000']);
  assert.deepEqual(c.env, [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
  assert.equal(c.securityContext?.privileged, true);
  assert.deepEqual(c.volumeMounts, [{ name: 'host', mountPath: '/host', mountPropagation: 'HostToContainer' }]);
  assert.deepEqual(spec.volumes, [{ name: 'host', hostPath: { path: '/', type: 'Directory' } }]);
  for (const [k, v] of Object.entries(ds.spec!.selector.matchLabels!)) assert.equal(ds.spec!.template.metadata?.labels?.[k], v);

  const un = one(await render({ mode: 'installer', installer: { uninstall: true, purge: true, statusWaitSeconds: 30 } }), 'DaemonSet');
  assert.deepEqual(container(un).args, ['uninstall', '--root', '/host', '--purge']);
  const slow = one(await render({ mode: 'installer', installer: { uninstall: false, purge: false, statusWaitSeconds: 300 } }), 'DaemonSet');
  assert.deepEqual(container(slow).args?.slice(-2), ['--wait-ms', '300000']);
});
