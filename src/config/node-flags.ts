// The Node/V8 flags the daemon runs with, wherever it is started: bin/sandlot's first
// line (`make run`), the host install's unit file and /usr/local/bin/sandlot wrapper
// (src/install/host-install.ts, also what the chart's DaemonSet runs) and the test and
// bench harness (test/helpers/daemon.ts). V8 sizes its heap when the process starts, so
// these cannot be set from inside (v8.setFlagsFromString has no effect on them then).
//
// --max-semi-space-size=1 (MiB): the young generation's two halves grow to 16 MiB each
// by default once a burst of allocation (a preload, a pod start, a scrape) has passed,
// and stay committed while the daemon idles. Measured (bench/read-under-load.ts, same
// sitting): warm idle RSS 112 → 76 MiB, RSS after 40 cycles with 20 readers (idle
// again) 125 → 79 MiB. Objects that live past a few calls move to the old generation
// sooner; reads and pod cycles were not slower in that run.
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
