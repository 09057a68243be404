import assert from 'node:assert/strict';
import { test } from 'node:test';
import { utcIsoTime } from '../../../src/observe/logger.js';

test('utcIsoTime writes what Date.prototype.toISOString writes', () => {
  const times = [
    0,
    1,
    999,
    Date.UTC(2026, 11, 7, 19, 33, 0, 123),
    Date.UTC(2024, 1, 29, 23, 59, 59, 999), // a leap day's last millisecond
    Date.UTC(2025, 0, 1, 0, 0, 0, 0),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.now(),
  ];
  for (const ms of times) assert.equal(utcIsoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
});
