// `-o json|yaml|table`, as crictl's list and inspect verbs take it. JSON and YAML show the
// CRI messages as the daemon sent them (field names of api/cri.proto).
import YAML from 'yaml';
import { UsageError, type VerbValues } from './verb.js';

export type OutputFormat = 'json' | 'yaml' | 'table';
const FORMATS: readonly OutputFormat[] = ['json', 'yaml', 'table'];

export function outputFormat(values: VerbValues, fallback: OutputFormat): OutputFormat {
  const v = values.output;
  if (v === undefined) return fallback;
  const f = String(v).toLowerCase() as OutputFormat;
  if (!FORMATS.includes(f)) throw new UsageError(`-o ${JSON.stringify(v)}: expected json, yaml or table`);
  return f;
}

/** A document as JSON (2-space indent) or YAML. */
export function formatDoc(format: 'json' | 'yaml', doc: unknown): string {
  return format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : YAML.stringify(doc);
}
