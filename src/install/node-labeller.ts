// The installer's only contact with the Kubernetes API: reading and merge-patching its
// node's labels. Everything goes through `NodeApi` (two methods), so the installer's
// logic is tested with a fake, and the one real implementation (`clientNodeApi`) is a
// thin adapter over @kubernetes/client-node's CoreV1Api whose requests are checked
// against a local HTTP server playing the API server (test/unit/install/).
//
// The label says which sandlot version a node runs; the RuntimeClasses' scheduling
// nodeSelector names it, so pods asking for sandlot's handlers land only where it runs.
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { InvalidArgumentError } from '../errors.js';

/** The label a node carries while sandlot is installed on it (value: the version). */
export const RUNTIME_LABEL = 'sandlot.dev/runtime';
/** The field manager named in every patch (the API server's managedFields). */
export const FIELD_MANAGER = 'sandlot-installer';

export interface NodeApi {
  /** The node's current labels. */
  readNodeLabels(node: string): Promise<Record<string, string>>;
  /** A JSON merge patch of `metadata.labels`: a `null` value removes that label. */
  patchNodeLabels(node: string, labels: Record<string, string | null>): Promise<void>;
}

/** A label value as Kubernetes accepts it (63 characters, alphanumerics at the ends). */
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
/** A node name (a DNS subdomain). */
const NODE_NAME = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

function checkNode(node: string): void {
  if (!NODE_NAME.test(node)) throw new InvalidArgumentError(`node name "${node}" is not a DNS subdomain`);
}

/** Sets RUNTIME_LABEL to `version` on `node`; returns whether anything changed. */
export async function labelNode(api: NodeApi, node: string, version: string): Promise<boolean> {
  checkNode(node);
  if (!LABEL_VALUE.test(version)) throw new InvalidArgumentError(`version "${version}" is not a valid label value for ${RUNTIME_LABEL}`);
  const labels = await api.readNodeLabels(node);
  if (labels[RUNTIME_LABEL] === version) return false;
  await api.patchNodeLabels(node, { [RUNTIME_LABEL]: version });
  return true;
}

/** Removes RUNTIME_LABEL from `node`; returns whether it was there. */
export async function unlabelNode(api: NodeApi, node: string): Promise<boolean> {
  checkNode(node);
  const labels = await api.readNodeLabels(node);
  if (!(RUNTIME_LABEL in labels)) return false;
  await api.patchNodeLabels(node, { [RUNTIME_LABEL]: null });
  return true;
}

/**
 * NodeApi through @kubernetes/client-node. `kc` defaults to client-node's own lookup:
 * $KUBECONFIG, then ~/.kube/config, then the pod's in-cluster service account.
 */
export function clientNodeApi(kc?: KubeConfig): NodeApi {
  const config = kc ?? defaultKubeConfig();
  const core = config.makeApiClient(CoreV1Api);
  return {
    async readNodeLabels(node) {
      const n: V1Node = await core.readNode({ name: node });
      return n.metadata?.labels ?? {};
    },
    async patchNodeLabels(node, labels) {
      // A merge patch: null deletes a key; the strategic default would do the same but
      // needs the server's schema, which a merge patch does not.
      const body: { metadata: { labels: Record<string, string | null> } } = { metadata: { labels } };
      await core.patchNode({ name: node, body, fieldManager: FIELD_MANAGER }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    },
  };
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
