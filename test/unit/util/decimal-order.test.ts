import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareDecimal } from '../../../src/util/decimal-order.js';

test('decimal strings order as the integers they spell, as BigInt would', () => {
  const values = ['0', '9', '10', '1733580000000000000', '1733580000000000001', '999999999999999999', '0007', '00', '18446744073709551615'];
  for (const a of values) {
    for (const b of values) {
      const want = Math.sign(Number(BigInt(a) - BigInt(b)));
      assert.equal(Math.sign(compareDecimal(a, b)), want, `${a} vs ${b}`);
    }
  }
});
