// Prometheus metrics: a registry of sandlot's own, process metrics, build info and the
// CRI call histogram, served on /metrics. An empty address turns the endpoint off.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { splitHostPort } from '../config/load.js';

export interface MetricsOptions {
  version: string;
}

export class Metrics {
  readonly registry = new Registry();
  readonly criCallDuration: Histogram<'service' | 'method' | 'code'>;

  constructor(options: MetricsOptions) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sandlot_' });
    const info = new Gauge({
      name: 'sandlot_build_info',
      help: 'Build information of the running sandlot; the value is always 1.',
      labelNames: ['version', 'node_version'],
      registers: [this.registry],
    });
    info.set({ version: options.version, node_version: process.version }, 1);
    this.criCallDuration = new Histogram({
      name: 'sandlot_cri_request_duration_seconds',
      help: 'Duration of CRI calls by service, method and gRPC status code.',
      labelNames: ['service', 'method', 'code'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [this.registry],
    });
  }
}

/** Serves the registry on host:port; resolves with the bound address. */
export async function serveMetrics(registry: Registry, address: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500).end(`collecting metrics: ${String(e)}\n`),
    );
  });
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export function boundAddress(server: http.Server): string {
  const a = server.address() as AddressInfo;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
