// The memory-cgroup path this process sits in: tests place every pod under it
// (sandlot's cgroup_root), never at a hierarchy's root.
import fs from 'node:fs';

export function testCgroupRoot(): string {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  for (const line of lines) {
    const [, controllers, p] = line.split(':');
    if (controllers !== undefined && controllers.split(',').includes('memory') && p) return p;
  }
  // cgroup v2 only: the unified path.
  const unified = lines.find((l) => l.startsWith('0::'));
  return unified ? unified.slice(3) || '/' : '/';
}
