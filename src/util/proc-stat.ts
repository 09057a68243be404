// One line of /proc/<pid>/stat: what the daemon tells a process by (its state letter and
// its start time), for the exec-fifo start (oci/exec-fifo.ts), a pod's infra without
// a conmon (sandbox/pod/infra-process.ts) and a container's start time in recovery
// (sandbox/container/process-start-time.ts).

/** The state letter and start time of a /proc/<pid>/stat line; undefined when it is not one. */
export function parseProcStat(text: string): { state: string; startTicks: number } | undefined {
  // comm (field 2) may hold spaces and parentheses: the fields after the last ')' are fixed.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  const startTicks = Number(rest[19]); // field 22 = index 19 after the state (field 3)
  if (rest[0] === undefined || rest[0] === '' || !Number.isFinite(startTicks)) return undefined;
  return { state: rest[0], startTicks };
}
