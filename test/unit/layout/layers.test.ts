// ARCHITECTURE.md's layers, enforced: imports point downwards only and no module
// imports itself back through a cycle.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Folder (or file) → the layer it belongs to. */
function layerOf(rel: string): string {
  if (rel.startsWith('native/')) return 'native';
  const m = /^src\/([^/]+)/.exec(rel);
  if (!m) return 'other';
  const top = m[1];
  if (top === 'daemon.ts') return 'cli';
  if (['errors.ts', 'util', 'config', 'observe', 'types'].includes(top)) return 'leaf';
  return top;
}

const BELOW: Record<string, string[]> = {
  native: ['native'],
  leaf: ['leaf'],
  oci: ['oci', 'leaf', 'native'],
  image: ['image', 'leaf', 'native'],
  network: ['network', 'leaf', 'native'],
  streaming: ['streaming', 'leaf', 'native'],
  sandbox: ['sandbox', 'oci', 'image', 'network', 'streaming', 'leaf', 'native'],
  cri: ['cri', 'sandbox', 'oci', 'image', 'network', 'streaming', 'leaf', 'native'],
  cli: ['cli', 'cri', 'sandbox', 'oci', 'image', 'network', 'streaming', 'leaf', 'native'],
};

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (rel.endsWith('.ts') && !rel.endsWith('.d.ts')) out.push(rel);
    }
  };
  walk('src');
  walk('native');
  return out;
}

function imports(rel: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    out.push(path.normalize(path.join(path.dirname(rel), m[1].replace(/\.js$/, '.ts'))));
  }
  for (const m of text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    out.push(path.normalize(path.join(path.dirname(rel), m[1].replace(/\.js$/, '.ts'))));
  }
  return out;
}

test('imports point downwards only (cli → cri → sandbox → oci | image | network | streaming → native)', () => {
  const bad: string[] = [];
  for (const file of sources()) {
    const from = layerOf(file);
    const allowed = BELOW[from];
    if (!allowed) continue;
    for (const target of imports(file)) {
      const to = layerOf(target);
      if (!allowed.includes(to)) bad.push(`${file} (${from}) imports ${target} (${to})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('there are no circular imports', () => {
  const graph = new Map(sources().map((f) => [f, imports(f).filter((t) => !t.startsWith('node_modules'))]));
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'visiting');
    stack.push(f);
    for (const t of graph.get(f) ?? []) visit(t);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  assert.deepEqual(cycles, []);
});

test('no default exports and no barrels outside native/', () => {
  const bad: string[] = [];
  for (const file of sources()) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    if (/^export default\b/m.test(text)) bad.push(`${file}: default export`);
    if (!file.startsWith('native/') && path.basename(file) === 'index.ts') bad.push(`${file}: barrel`);
  }
  assert.deepEqual(bad, []);
});
