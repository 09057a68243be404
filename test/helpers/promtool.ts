// `promtool check metrics` (Debian's `prometheus` package, a test dependency) over an
// exposition text: what the metrics tests hold /metrics to.
import { spawnSync } from 'node:child_process';

/** promtool's findings over `text`; '' when it passes. */
export function promtoolFindings(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`running promtool (apt-get install prometheus): ${r.error.message}`);
  return `${r.stdout}${r.stderr}`.trim() + (r.status === 0 ? '' : `\n(exit status ${r.status})`);
}
