// The person's terminal: raw mode for -t, its size, and resize events (SIGWINCH arrives
// in Node as 'resize' on the stdout TTY).
import type { RemoteCommandIo, TerminalSize } from './ws-channel-client.js';

export function terminalSize(): TerminalSize | undefined {
  const out = process.stdout;
  return out.isTTY && out.columns && out.rows ? { width: out.columns, height: out.rows } : undefined;
}

/** Puts stdin in raw mode when it is a terminal; returns the undo. */
export function rawStdin(): () => void {
  const stdin = process.stdin;
  if (!stdin.isTTY) return () => undefined;
  const was = stdin.isRaw;
  stdin.setRawMode(true);
  return () => stdin.setRawMode(was);
}

/** The terminal side of a remotecommand session. */
export function terminalIo(opts: { stdin: boolean; tty: boolean; stdout?: boolean }): RemoteCommandIo {
  const io: RemoteCommandIo = {};
  if (opts.stdin) io.stdin = process.stdin;
  if (opts.stdout !== false) {
    io.stdout = process.stdout;
    io.stderr = process.stderr;
  }
  if (opts.tty) {
    const size = terminalSize();
    if (size) io.size = size;
    io.onResize = (send) => {
      const onResize = (): void => {
        const s = terminalSize();
        if (s) send(s);
      };
      process.stdout.on('resize', onResize);
      return () => process.stdout.off('resize', onResize);
    };
  }
  return io;
}
