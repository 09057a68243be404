// Security profiles of an app container's spec: masked/read-only paths, seccomp
// (RuntimeDefault, Unconfined, Localhost, and the deprecated path strings) and AppArmor.
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import type { CriContainerSecurityContext, SpecLookups } from './container-config.js';
import { defaultSeccompProfile, parseSeccompProfile } from './seccomp-default.js';
import type { LinuxSeccomp } from './spec-common.js';
import { cleanAbsolute } from './spec-container-mounts.js';

/** The CRI's path list, or the defaults when it gives none. */
export function nonEmptyOr(given: readonly string[] | null | undefined, fallback: readonly string[], field: string): string[] {
  // proto3 cannot tell an empty list from an unset one: both mean "the defaults" (containerd).
  if (!given || given.length === 0) return [...fallback];
  return given.map((p, i) => cleanAbsolute(p, `${field}[${i}]`));
}

/** linux.seccomp, or undefined for none (privileged, Unconfined, unset). */
export async function buildSeccomp(
  sc: CriContainerSecurityContext | undefined,
  privileged: boolean,
  bounding: readonly string[],
  lookups: SpecLookups,
): Promise<LinuxSeccomp | undefined> {
  if (privileged || sc === undefined) return undefined;
  let kind: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  let ref = '';
  let field = 'linux.security_context.seccomp';
  if (sc.seccomp) {
    kind = sc.seccomp.profile_type ?? 'RuntimeDefault';
    ref = sc.seccomp.localhost_ref ?? '';
    field += '.localhost_ref';
  } else {
    // The deprecated string form: "", "unconfined", "runtime/default", "docker/default", "localhost/<path>".
    const p = sc.seccomp_profile_path ?? '';
    field = 'linux.security_context.seccomp_profile_path';
    if (p === '' || p === 'unconfined') kind = 'Unconfined';
    else if (p === 'runtime/default' || p === 'docker/default') kind = 'RuntimeDefault';
    else if (p.startsWith('localhost/')) {
      kind = 'Localhost';
      ref = p.slice('localhost/'.length);
    } else throw new InvalidArgumentError(`${field}: unknown seccomp profile ${JSON.stringify(p)}`);
  }
  switch (kind) {
    case 'Unconfined':
      return undefined;
    case 'RuntimeDefault':
      return defaultSeccompProfile(bounding);
    case 'Localhost': {
      const file = cleanAbsolute(ref, field);
      const text = await lookups.readFile(file);
      if (text === undefined) throw new InvalidArgumentError(`${field}: seccomp profile "${file}" does not exist`);
      return parseSeccompProfile(text, bounding, `${field} "${file}"`);
    }
    default:
      throw new InvalidArgumentError(`linux.security_context.seccomp.profile_type: unknown type ${JSON.stringify(kind)}`);
  }
}

/** process.apparmorProfile, or undefined for none. */
export function apparmorProfile(sc: CriContainerSecurityContext | undefined, privileged: boolean, enabled: boolean): string | undefined {
  if (privileged || sc === undefined) return undefined;
  let kind: string;
  let ref = '';
  if (sc.apparmor) {
    kind = sc.apparmor.profile_type ?? 'RuntimeDefault';
    ref = sc.apparmor.localhost_ref ?? '';
  } else {
    const p = sc.apparmor_profile ?? '';
    kind = p === '' || p === 'unconfined' ? 'Unconfined' : p === 'runtime/default' ? 'RuntimeDefault' : 'Localhost';
    ref = p.startsWith('localhost/') ? p.slice('localhost/'.length) : p;
  }
  if (kind === 'Unconfined') return undefined;
  if (!enabled) {
    // As containerd: without AppArmor on the host, the default means none, but a
    // named profile cannot be honoured.
    if (kind === 'Localhost') {
      throw new InvalidArgumentError(`linux.security_context.apparmor: profile ${JSON.stringify(ref)} requested but AppArmor is not enabled on this host`);
    }
    return undefined;
  }
  if (kind === 'Localhost') {
    const name = ref.startsWith('localhost/') ? ref.slice('localhost/'.length) : ref;
    if (name === '') throw new InvalidArgumentError('linux.security_context.apparmor.localhost_ref: empty profile name');
    return name;
  }
  throw new UnimplementedError('linux.security_context.apparmor: the RuntimeDefault AppArmor profile is not supported on AppArmor hosts yet');
}
