// Image pull metrics, as CRI-O exports them: pulls by result, failures by reason, the
// bytes fetched from registries (counted as they arrive, so a long pull shows its
// throughput), the duration of successful pulls, and pulls in progress. The image
// service records one pull per fetch it makes: concurrent pulls it shares count once.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SandlotError } from '../errors.js';

/** Seconds: a small image in under a second up to a large one over a slow link. */
export const IMAGE_PULL_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];

/** The progress the puller reports (structurally src/image's PullProgress). */
export interface PullProgressSample {
  layer: string;
  /** Bytes of `layer` so far in this phase. */
  bytes: number;
  phase: string;
}

/** One pull, from its start to its end. */
export interface PullRecording {
  progress(p: PullProgressSample): void;
  succeeded(): void;
  /** `cancelled`: every caller went away and the fetch was aborted. */
  failed(e: unknown, cancelled: boolean): void;
}

/** Why a pull failed, as a label value: the typed error's gRPC code in lower case. */
export function pullFailureReason(e: unknown, cancelled: boolean): string {
  if (cancelled) return 'cancelled';
  return (e instanceof SandlotError ? e.code : 'INTERNAL').toLowerCase();
}

export class ImagePullMetrics {
  private readonly pulls: Counter<'result'>;
  private readonly failures: Counter<'reason'>;
  private readonly bytes: Counter;
  private readonly duration: Histogram;
  private readonly inProgress: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.pulls = new Counter({
      name: 'sandlot_image_pulls_total',
      help: 'Image pulls finished, by result (success, failure).',
      labelNames: ['result'],
      registers,
    });
    this.failures = new Counter({
      name: 'sandlot_image_pull_failures_total',
      help: 'Failed image pulls by reason (the gRPC code in lower case: not_found, unauthenticated, unavailable, cancelled …).',
      labelNames: ['reason'],
      registers,
    });
    this.bytes = new Counter({ name: 'sandlot_image_pull_bytes_total', help: 'Bytes of image layers fetched from registries.', registers });
    this.duration = new Histogram({
      name: 'sandlot_image_pull_duration_seconds',
      help: 'Duration of successful image pulls (manifest to stored image).',
      buckets: IMAGE_PULL_BUCKETS,
      registers,
    });
    this.inProgress = new Gauge({ name: 'sandlot_image_pulls_in_progress', help: 'Image pulls running now.', registers });
    // Series that exist before the first pull, so a rate() over them starts at 0.
    this.pulls.inc({ result: 'success' }, 0);
    this.pulls.inc({ result: 'failure' }, 0);
  }

  begin(): PullRecording {
    const endTimer = this.duration.startTimer();
    this.inProgress.inc();
    const seen = new Map<string, number>();
    let ended = false;
    const end = (): boolean => {
      if (ended) return false;
      ended = true;
      this.inProgress.dec();
      return true;
    };
    return {
      progress: (p) => {
        if (ended || p.phase !== 'downloading') return;
        const delta = p.bytes - (seen.get(p.layer) ?? 0);
        if (delta <= 0) return; // a retried fetch starts again at 0: count only new bytes
        seen.set(p.layer, p.bytes);
        this.bytes.inc(delta);
      },
      succeeded: () => {
        if (!end()) return;
        endTimer();
        this.pulls.inc({ result: 'success' });
      },
      failed: (e, cancelled) => {
        if (!end()) return;
        this.pulls.inc({ result: 'failure' });
        this.failures.inc({ reason: pullFailureReason(e, cancelled) });
      },
    };
  }
}
