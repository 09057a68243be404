// The Helm chart cannot be rendered here (no helm in Debian's archive), so this checks
// what can go wrong without it: the files parse, and the daemon configuration the
// ConfigMap carries is one the daemon accepts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { validateConfig } from '../../../src/config/load.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

const CHART = path.join(REPO_ROOT, 'charts/sandlot');

test('Chart.yaml and values.yaml parse and name the chart', () => {
  const chart = YAML.parse(fs.readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8'));
  assert.equal(chart.name, 'sandlot');
  assert.equal(chart.apiVersion, 'v2');
  const values = YAML.parse(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  assert.ok(Array.isArray(values.runtimeClasses) && values.runtimeClasses.length > 0);
});

test('the configuration the chart renders into its ConfigMap is valid for the daemon', () => {
  const values = YAML.parse(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  const hp = values.hostPaths;
  const rendered = {
    socket_path: `${hp.socketDir}/sandlot.sock`,
    root_dir: hp.rootDir,
    state_dir: hp.stateDir,
    cni_conf_dir: hp.cniConfDir,
    cni_bin_dirs: [hp.cniBinDir],
    ...values.config,
  };
  const cfg = validateConfig({ ...defaultConfig(), ...rendered });
  assert.equal(cfg.socket_path, '/run/sandlot/sandlot.sock');
  for (const rc of values.runtimeClasses) assert.ok(rc.handler in cfg.runtimes, `RuntimeClass handler ${rc.handler} is configured`);
});

test('every template names only values that values.yaml defines', () => {
  const values = YAML.parse(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  const dir = path.join(CHART, 'templates');
  for (const f of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
      let v: unknown = values;
      for (const part of m[1]!.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
      assert.notEqual(v, undefined, `${f}: .Values.${m[1]} is defined`);
    }
  }
});
