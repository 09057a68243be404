// IDs on the command line may be unique prefixes, as with crictl and docker. The daemon
// resolves a prefix in the List id filter but answers an ambiguous one with nothing, so
// a miss is looked at again over the full list to say which of the two it was.

export type IdKind = 'pod' | 'container';

export class IdResolutionError extends Error {
  constructor(
    message: string,
    readonly reason: 'not-found' | 'ambiguous',
  ) {
    super(message);
    this.name = 'IdResolutionError';
  }
}

/** The one ID starting with `prefix`; an exact match wins over longer ones. */
export function pickUnique(kind: IdKind, prefix: string, ids: string[]): string {
  if (prefix === '') throw new IdResolutionError(`${kind} ID must not be empty`, 'not-found');
  if (ids.includes(prefix)) return prefix;
  const matches = ids.filter((id) => id.startsWith(prefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new IdResolutionError(`${kind} "${prefix}" not found`, 'not-found');
  throw new IdResolutionError(`${kind} ID prefix "${prefix}" is ambiguous: ${matches.length} ${kind}s match`, 'ambiguous');
}

/** Lists IDs; with `idFilter`, what the daemon's id filter matches. */
export type ListIds = (idFilter?: string) => Promise<string[]>;

export async function resolveId(kind: IdKind, prefix: string, list: ListIds): Promise<string> {
  if (prefix === '') throw new IdResolutionError(`${kind} ID must not be empty`, 'not-found');
  const filtered = await list(prefix);
  const hit = filtered.filter((id) => id.startsWith(prefix));
  if (hit.length === 1) return hit[0]!;
  return pickUnique(kind, prefix, await list());
}
