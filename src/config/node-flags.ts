// The Node/V8 flags the daemon runs with, wherever it is started: bin/sandlot's first
// line (`make run`), the host install's unit file and /usr/local/bin/sandlot wrapper
// (src/install/host-install.ts, also what the chart's DaemonSet runs) and the test and
// bench harness (test/helpers/daemon.ts). V8 sizes its heap when the process starts, so
// these cannot be set from inside (v8.setFlagsFromString has no effect on them then).
//
// --max-semi-space-size=1 (MiB): the young generation's two halves grow to 16 MiB each
// once a burst of allocation (a preload, pod starts, scrapes) has passed, and stay
// committed while the daemon idles. Measured in one sitting (bench/read-under-load.ts,
// 100 runc cycles, 20 readers; before → with the flag): idle 20 s after start 92 → 73
// MiB, warm idle 111 → 83 MiB, after the cycles and 20 s idle 139 → 94 MiB. Objects
// that outlive a few calls reach the old generation sooner; read p50s were the same.
//
// --expose-gc: when a burst of calls is over and left V8's heap 2 MiB bigger (used or
// committed), the daemon compacts its heap with a full GC (src/daemon.ts collectIdle,
// src/util/trim-schedule.ts). Without a GC, what the burst promoted to the old generation
// and is garbage now waits for V8's memory reducer, which came 16 s after a burst of 40
// pod cycles in one run and not within 22 s in others.
//
// --no-opt: no TurboFan, except while image work runs (src/util/optimizer-switch.ts turns
// it on for a pull or an import: zstd layers decompress in JavaScript). Where an idle
// daemon's memory over a bare node went (issue 13, /proc/PID/pagemap against node's
// symbols): 3.1 MiB of node's resident code pages were TurboFan's compiler, paged in
// when start-up code got hot, besides the optimized code and the compiler's zones.
// Measured in one sitting (paired, alternating; 3 starts each, RSS median 6-12 s after
// start): 68.8 → 62.5 MiB; 4 paired runs of 20 pod lifecycles: daemon CPU per pod 52.5
// vs 53.5 ms (medians; the interpreter and Sparkplug run a lifecycle's JavaScript as fast:
// most of its CPU is syscalls and child processes), warm idle 73.8 → 65.8 MiB.
//
// --no-expose-wasm: nothing of the daemon's uses WebAssembly, yet two things compiled
// some at start: Node's CommonJS export lexer (each CommonJS package imported from ESM)
// and `long` (protobufjs's int64 helper, which falls back to JavaScript). Without the
// global both take their JavaScript paths, and neither the wasm compilers' code pages
// nor their code space are touched: 62.5 → 61.7 MiB (same sitting).
//
// --no-sparkplug: no baseline compiler either; the daemon's JavaScript runs in the
// interpreter (TurboFan still optimizes a pull's hot code straight from it). Sparkplug's
// code grew with every function that got warm and stayed in the code space. Measured in
// one sitting (3 paired runs of 20 pod lifecycles with a busybox preload, medians):
// RSS 8 s after start 62.6 → 60.8 MiB, warm idle 63.8 → 60.5, 20 pods held 67.8 → 64.5
// (PSS daemon + conmons 54.9 → 52.2); daemon CPU per pod 48.5 vs 49.5 ms, List/Status
// p50 at 20 pods the same (1.3-1.6 ms).
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--expose-gc', '--no-opt', '--no-expose-wasm', '--no-sparkplug'];
