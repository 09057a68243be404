// STYLE.md 14 / issue 12: runtime differences live in src/oci/. The sandbox layer asks
// the runtime's features (RuntimeDriver.features, runtimeFeatures(type)) and never which
// runtime it has: no `isRunsc`, no comparison with a handler type, no look at a handler
// config's `type`, in any file under src/sandbox/ (or src/cri/, which is above it).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (rel.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** What a runtime-type branch looks like in code (comments are not code). */
const BRANCHES: RegExp[] = [
  /\bisRunsc\b/,
  /[!=]==?\s*['"](runsc|oci)['"]/,
  /['"](runsc|oci)['"]\s*[!=]==?/,
  /\bcase\s+['"](runsc|oci)['"]/,
  /\bruntimeType\s*[!=]==?/,
  /\brunscNetwork\b/,
];

function codeLines(text: string): Array<{ line: number; code: string }> {
  const out: Array<{ line: number; code: string }> = [];
  let inBlock = false;
  text.split('\n').forEach((raw, i) => {
    let code = raw;
    if (inBlock) {
      const end = code.indexOf('*/');
      if (end < 0) return;
      code = code.slice(end + 2);
      inBlock = false;
    }
    code = code.replace(/\/\*.*?\*\//g, '');
    const open = code.indexOf('/*');
    if (open >= 0) {
      inBlock = true;
      code = code.slice(0, open);
    }
    code = code.replace(/\/\/.*$/, '');
    if (code.trim() !== '') out.push({ line: i + 1, code });
  });
  return out;
}

test('no file of src/sandbox/ or src/cri/ branches on the runtime type (the runtime says what it can do)', () => {
  const found: string[] = [];
  for (const file of [...sources('src/sandbox'), ...sources('src/cri')]) {
    for (const { line, code } of codeLines(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
      if (BRANCHES.some((re) => re.test(code))) found.push(`${file}:${line}: ${code.trim()}`);
    }
  }
  assert.deepEqual(found, []);
});

test('the check sees a branch where there is one (and not in comments)', () => {
  const hits = (text: string) => codeLines(text).filter(({ code }) => BRANCHES.some((re) => re.test(code))).length;
  assert.equal(hits('if (driver.isRunsc) x();'), 1);
  assert.equal(hits("const r = rec.runtimeType === 'runsc';"), 1);
  assert.equal(hits("if (rc.type !== 'runsc') return rc;"), 1);
  assert.equal(hits("// under runsc, if (x === 'runsc') …\n/* isRunsc */ y();"), 0);
  assert.equal(hits('if (driver.features.filestores) x();\nruntimeType: driver.type,'), 0);
});
