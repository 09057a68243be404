// Orders non-negative decimal integer strings (the int64 nanosecond times CRI records
// carry as strings) without making a BigInt per comparison: List calls sort every record
// by its creation time, and BigInt pairs per comparison were ~8 % of a read's CPU.

function trimmed(s: string): string {
  if (s.length < 2 || s.charCodeAt(0) !== 48) return s;
  const t = s.replace(/^0+/, '');
  return t === '' ? '0' : t;
}

/** Negative, zero or positive as `a` is below, equal to or above `b` (both all digits). */
export function compareDecimal(a: string, b: string): number {
  const x = trimmed(a);
  const y = trimmed(b);
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
