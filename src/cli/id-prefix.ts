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
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new IdResolutionError(`${kind} "${prefix}" not found`, 'not-found');
  throw new IdResolutionError(`${kind} ID prefix "${prefix}" is ambiguous: ${matches.length} ${kind}s match`, 'ambiguous');
}

/** Lists IDs; with `idFilter`, what the daemon's id filter matches. */
export type ListIds = (idFilter?: string) => Promise<string[]>;

export async function resolveId(kind: IdKind, prefix: string, list: ListIds): Promise<string> {
  if (prefix === '') throw new IdResolutionError(`${kind} ID must not be empty`, 'not-found');
  const filtered = await list(prefix);
  const hit = filtered.filter((id) => id.startsWith(prefix));
  if (hit.length === 1) return hit[0];
  return pickUnique(kind, prefix, await list());
}

/** What a person may call a pod or container by: its ID and its given name. */
export interface Named {
  id: string;
  name: string;
  /** A few words for the candidate list of an ambiguous reference (state, pod, age). */
  detail?: string;
}

function candidates(kind: IdKind, list: Named[]): string {
  return list.map((c) => `  ${c.id.slice(0, 13)}  ${c.name}${c.detail ? `  ${c.detail}` : ''}`).join('\n') + `\nname the ${kind} by a longer ID prefix`;
}

/**
 * The one pod or container `ref` names, as docker resolves: an exact ID, else an exact
 * name, else a unique ID prefix. More than one match is an error listing them.
 */
export function pickNamed(kind: IdKind, ref: string, items: Named[]): Named {
  if (ref === '') throw new IdResolutionError(`${kind} ID or name must not be empty`, 'not-found');
  const exact = items.find((x) => x.id === ref);
  if (exact) return exact;
  const byName = items.filter((x) => x.name === ref);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) {
    throw new IdResolutionError(`${kind} name "${ref}" is ambiguous: ${byName.length} ${kind}s have it:\n${candidates(kind, byName)}`, 'ambiguous');
  }
  const byPrefix = items.filter((x) => x.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length === 0) throw new IdResolutionError(`${kind} "${ref}" not found (no ${kind} has this name or ID prefix)`, 'not-found');
  throw new IdResolutionError(`${kind} ID prefix "${ref}" is ambiguous: ${byPrefix.length} ${kind}s match:\n${candidates(kind, byPrefix)}`, 'ambiguous');
}
