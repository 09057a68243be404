// Types for the parts of hpack.js (RFC 7541) that sandlot uses.
declare module 'hpack.js' {
  import type { Transform } from 'node:stream';
  interface TableOptions {
    table: { size: number };
  }
  interface Hpack {
    compressor: { create(options: TableOptions): Transform };
    decompressor: { create(options: TableOptions): Transform & { execute(): void } };
  }
  const hpack: Hpack;
  export default hpack;
}
