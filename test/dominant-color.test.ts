import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dominantColor } from '../src/jobs/dominant-color.js';

const pixels = (...runs: [count: number, rgba: [number, number, number, number]][]) =>
  Uint8Array.from(runs.flatMap(([count, rgba]) => Array.from({ length: count }, () => rgba).flat()));

test('dominant colour: the mean of the fullest of 4096 bins', () => {
  // 3 near-greens fall into one bin and outnumber 2 exact reds.
  const rgba = pixels([2, [255, 0, 0, 255]], [1, [16, 200, 32, 255]], [2, [20, 206, 40, 255]]);
  assert.equal(dominantColor(rgba), `#${[19, 204, 37].map((n) => n.toString(16).padStart(2, '0')).join('')}`);
});

test('dominant colour: transparent pixels count for nothing; none visible, no colour', () => {
  assert.equal(dominantColor(pixels([5, [0, 0, 0, 0]], [1, [9, 9, 9, 128]])), '#090909');
  assert.equal(dominantColor(pixels([4, [255, 255, 255, 0]])), undefined);
  assert.equal(dominantColor(new Uint8Array(0)), undefined);
});
