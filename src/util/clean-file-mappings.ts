// The clean, read-only file mappings of a process, read from its /proc/PID/smaps: node's
// executable (its code, V8's builtins, ICU and OpenSSL tables, the dynamic symbol table
// the addons are linked against) and the shared libraries. Start-up touches ~10 MiB more
// of node's 99 MiB executable than an idle node needs (module compilation, the proto
// parse under TurboFan, OpenSSL's init, koffi's symbol lookups), and every page touched
// stays mapped: 42 MiB of the daemon's 70 MiB RSS just started were node's executable.
// Their pages are the file's own (no copy-on-write copy: Anonymous 0 kB), so dropping
// them from the page tables (madvise MADV_DONTNEED) loses nothing: they stay in the page
// cache, and a touch maps them back.

export interface FileMapping {
  start: bigint;
  end: bigint;
  path: string;
  /** Resident pages of the mapping now. */
  rssKiB: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/;

function field(block: string[], name: string): number {
  const line = block.find((l) => l.startsWith(`${name}:`));
  const m = line === undefined ? null : /^\S+:\s+(\d+) kB$/.exec(line);
  return m ? Number(m[1]) : 0;
}

/**
 * The mappings of `smaps` (the text of /proc/PID/smaps) whose pages can be dropped and
 * read back from their file unchanged: a file's, private, not writable, no page copied
 * (Anonymous 0 kB: a relocated RELRO part is not clean), none locked, some resident.
 */
export function cleanFileMappings(smaps: string): FileMapping[] {
  const out: FileMapping[] = [];
  let header: RegExpExecArray | null = null;
  let block: string[] = [];
  const flush = () => {
    if (!header) return;
    const [, start, end, perms, path] = header;
    const clean = path.startsWith('/') && !path.endsWith(' (deleted)') && perms[1] !== 'w' && perms[3] === 'p';
    const rssKiB = field(block, 'Rss');
    if (clean && rssKiB > 0 && field(block, 'Anonymous') === 0 && field(block, 'Locked') === 0) {
      out.push({ start: BigInt(`0x${start}`), end: BigInt(`0x${end}`), path, rssKiB });
    }
  };
  for (const line of smaps.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      flush();
      header = h;
      block = [];
    } else block.push(line);
  }
  flush();
  return out;
}
