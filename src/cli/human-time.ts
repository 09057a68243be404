// Durations the way crictl and docker print them (go-units HumanDuration), for the
// CREATED column: "Less than a second ago", "About a minute ago", "3 hours ago".

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;

export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / SECOND_MS);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / MINUTE_MS);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / HOUR_MS);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** `created_at` (nanoseconds since the epoch, as the CRI sends it) relative to now. */
export function timeAgo(createdAtNs: string | number | bigint, nowMs: number): string {
  let ns: bigint;
  try {
    ns = BigInt(createdAtNs);
  } catch {
    return 'unknown';
  }
  if (ns <= 0n) return 'unknown';
  const createdMs = Number(ns / 1_000_000n);
  // A clock a little ahead of ours is "now", not a future.
  return `${humanDuration(Math.max(0, nowMs - createdMs))} ago`;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS };

/**
 * `--since` as docker and crictl take it: a Go duration back from now (`90s`, `1h30m`)
 * or an RFC 3339 time (`2026-12-04T02:00:00Z`). Milliseconds since the epoch; undefined
 * for text that is neither.
 */
export function parseSince(text: string, nowMs: number): number | undefined {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === text) {
    return nowMs - parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]], 0);
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
