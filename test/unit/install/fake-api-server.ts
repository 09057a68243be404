// A tiny API server on 127.0.0.1 for the installer's two node calls (GET and merge
// PATCH of /api/v1/nodes/<name>), recording every request, and a kubeconfig for it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type V1Node } from '@kubernetes/client-node';

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A tiny API server: GET and PATCH (merge patch) of /api/v1/nodes/<name>. */
export async function fakeApiServer(t: { after(fn: () => unknown): void }, node: V1Node): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const name = /^\/api\/v1\/nodes\/([^/?]+)/.exec(req.url!)?.[1];
      res.setHeader('content-type', 'application/json');
      if (name !== node.metadata!.name) {
        res.statusCode = 404;
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
        return;
      }
      if (req.method === 'PATCH') {
        const patch = JSON.parse(body) as { metadata?: { labels?: Record<string, string | null> } };
        const labels = { ...(node.metadata!.labels ?? {}) };
        for (const [k, v] of Object.entries(patch.metadata?.labels ?? {})) {
          if (v === null) delete labels[k];
          else labels[k] = v;
        }
        node.metadata!.labels = labels;
      }
      res.end(JSON.stringify(node));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

export function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: true }],
    users: [{ name: 'installer', token: 'sa-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'installer' }],
    currentContext: 'fake',
  });
  return kc;
}

/** The same cluster as a kubeconfig file's text (for $KUBECONFIG in a container). */
export function kubeConfigText(server: string): string {
  return kubeConfig(server).exportConfig();
}
