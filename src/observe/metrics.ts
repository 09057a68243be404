// Prometheus metrics: a registry of sandlot's own, the standard process and Node.js
// metrics (unprefixed, as every exporter names them), build info, the CRI call
// histogram and calls in flight, served on /metrics. An empty address turns the
// endpoint off. What /metrics serves passes `promtool check metrics`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { splitHostPort } from '../config/load.js';
import { ImagePullMetrics } from './image-pull-metrics.js';

export interface MetricsOptions {
  version: string;
}

/**
 * Seconds: sub-millisecond reads up to the two minutes a big pull or a slow pod start
 * takes, with enough buckets between 5 s and 120 s to tell them apart.
 */
export const CRI_CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120];

/**
 * prom-client's gauges that break the naming rules promtool checks ("non-counter
 * metrics should not have _total suffix"): each is served under `<name>_all` with the
 * same value and help, read from prom-client's own collector at each scrape.
 */
const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** How often the event-loop lag is sampled (prom-client's eventLoopMonitoringPrecision). */
const EVENT_LOOP_SAMPLE_MS = 100;

/** One method's calls being served now: the CRI decorator counts on it, a scrape reads it. */
export interface InFlightCount {
  n: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly criCallDuration: Histogram<'service' | 'method' | 'code'>;
  readonly imagePulls: ImagePullMetrics;
  private readonly inFlight: Array<{ labels: { service: string; method: string }; count: InFlightCount }> = [];

  constructor(options: MetricsOptions) {
    // The event-loop lag histogram samples every 100 ms, not prom-client's default 10:
    // 100 timer wake-ups a second were most of an idle daemon's CPU (issue 13: 350 -> 90
    // ms per 20 s idle, 2 runs each); the lag series keep their names and meaning.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    renameMisnamedGauges(this.registry);
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
      buckets: CRI_CALL_BUCKETS,
      registers: [this.registry],
    });
    // Set from the counters when scraped: a gauge's inc() and dec() per call hashed its
    // labels twice a call (issue 13: a few % of a read's CPU in the interpreter).
    const inFlight = this.inFlight;
    new Gauge({
      name: 'sandlot_cri_requests_in_flight',
      help: 'CRI calls being served now, by service and method (a GetContainerEvents stream counts while it is open).',
      labelNames: ['service', 'method'],
      registers: [this.registry],
      collect() {
        for (const { labels, count } of inFlight) this.set(labels, count.n);
      },
    });
    this.imagePulls = new ImagePullMetrics(this.registry);
  }

  /**
   * A new counter of calls in flight with these labels, served as
   * sandlot_cri_requests_in_flight from the next scrape on (take it at a method's first
   * call: a method never called has no series).
   */
  callsInFlight(labels: { service: string; method: string }): InFlightCount {
    const count = { n: 0 };
    this.inFlight.push({ labels, count });
    return count;
  }
}

function renameMisnamedGauges(registry: Registry): void {
  for (const name of MISNAMED_DEFAULT_GAUGES) {
    const original = registry.getSingleMetric(name);
    if (!original) continue; // this Node has no such API (getActiveResourcesInfo)
    registry.removeSingleMetric(name);
    new Gauge({
      name: name.replace(/_total$/, '_all'),
      help: `${(original as unknown as { help: string }).help} (prom-client's ${name})`,
      registers: [registry],
      async collect() {
        const got = await original.get();
        this.set(got.values[0]?.value ?? 0);
      },
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
