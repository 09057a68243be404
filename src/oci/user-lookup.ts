// Users and groups of a container, resolved the way containerd's oci.WithUser and
// WithAdditionalGIDs do: from the image's own /etc/passwd and /etc/group (never the
// host's). A user spec is "user" or "user:group", each part a name or a number.
import { InvalidArgumentError } from '../errors.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The largest valid uid/gid (2^32 - 2: (uid_t)-1 means "no change" to the kernel). */
export const MAX_ID = 4294967294;

const ID_RE = /^\d+$/;

function parseId(s: string | undefined): number | undefined {
  if (s === undefined || !ID_RE.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

/** /etc/passwd text → entries; malformed lines are skipped (as libc does). */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (f[0] === undefined || f[0] === '' || uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** /etc/group text → entries; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = parseId(f[2]);
    if (f[0] === undefined || f[0] === '' || gid === undefined) continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    out.push({ name: f[0], gid, members });
  }
  return out;
}

/** The image's account files, as text; undefined when the image has none. */
export interface AccountFiles {
  passwd: string | undefined;
  group: string | undefined;
}

export interface ResolveUserOptions {
  /** Extra gids (the CRI's supplemental_groups), appended in order. */
  supplementalGroups?: readonly number[];
  /**
   * Strict supplemental-groups policy: ignore /etc/group membership, keep only the
   * primary gid and `supplementalGroups`.
   */
  strict?: boolean;
  /** Names what the spec came from in errors (e.g. `image config User`). */
  field?: string;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Primary gid first, then /etc/group memberships, then supplemental groups; no duplicates. */
  additionalGids: number[];
  /** The user name when the image's passwd knows it. */
  username: string | undefined;
}

/**
 * Resolves "name", "uid", "uid:gid", "name:group" (and the mixed forms) against the
 * image's account files. A numeric uid without a passwd entry gets gid 0 (as
 * containerd); a name that the files do not hold is an InvalidArgumentError naming it.
 */
export function resolveUser(spec: string, files: AccountFiles, opts: ResolveUserOptions = {}): ResolvedUser {
  const field = opts.field ?? 'user';
  const colon = spec.indexOf(':');
  const userPart = colon === -1 ? spec : spec.slice(0, colon);
  const groupPart = colon === -1 ? undefined : spec.slice(colon + 1);
  if (userPart === '') throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: empty user`);
  const passwd = files.passwd === undefined ? undefined : parsePasswd(files.passwd);
  const groups = files.group === undefined ? undefined : parseGroup(files.group);

  let uid: number;
  let gid: number;
  let username: string | undefined;
  if (ID_RE.test(userPart)) {
    const n = parseId(userPart);
    if (n === undefined) throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: uid ${userPart} is out of range`);
    uid = n;
    const entry = passwd?.find((p) => p.uid === n);
    gid = entry?.gid ?? 0;
    username = entry?.name;
  } else {
    const entry = passwd?.find((p) => p.name === userPart);
    if (entry === undefined) {
      const where = passwd === undefined ? 'the image has no /etc/passwd' : "no such user in the image's /etc/passwd";
      throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: user "${userPart}" not found: ${where}`);
    }
    uid = entry.uid;
    gid = entry.gid;
    username = entry.name;
  }

  if (groupPart !== undefined) {
    if (groupPart === '') throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: empty group`);
    if (ID_RE.test(groupPart)) {
      const n = parseId(groupPart);
      if (n === undefined) throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: gid ${groupPart} is out of range`);
      gid = n;
    } else {
      const entry = groups?.find((g) => g.name === groupPart);
      if (entry === undefined) {
        const where = groups === undefined ? 'the image has no /etc/group' : "no such group in the image's /etc/group";
        throw new InvalidArgumentError(`resolving ${field} ${JSON.stringify(spec)}: group "${groupPart}" not found: ${where}`);
      }
      gid = entry.gid;
    }
  }

  const gids: number[] = [gid];
  const push = (g: number): void => {
    if (!gids.includes(g)) gids.push(g);
  };
  if (!opts.strict && username !== undefined && groups !== undefined) {
    // Memberships by name; a group named like the user is its primary group, not a
    // supplementary one (containerd's rule).
    for (const g of groups) if (g.name !== username && g.members.includes(username)) push(g.gid);
  }
  for (const g of opts.supplementalGroups ?? []) {
    if (!Number.isInteger(g) || g < 0 || g > MAX_ID) {
      throw new InvalidArgumentError(`resolving ${field}: supplemental group ${g} is out of range`);
    }
    push(g);
  }
  // The primary group first, then the others in ascending order: the kernel keeps a
  // process's groups sorted (runc), gVisor keeps them as given; sorted here, both list
  // them alike and the spec does not depend on the order of /etc/group.
  const additionalGids = [gid, ...gids.slice(1).sort((a, b) => a - b)];
  return { uid, gid, additionalGids, username };
}
