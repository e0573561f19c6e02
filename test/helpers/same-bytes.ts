// A byte-for-byte comparison of large buffers that fails promptly with where they differ.
// assert.deepEqual of two multi-MiB buffers that differ builds a diff of their every byte
// (mocha, node:assert): minutes of CPU, which a test run shows as a hang (bugs38: leak37's
// "close hung" was this diff, after a close that had returned in 30 ms).
import assert from 'node:assert/strict'

/** Throws (an AssertionError naming the length, or the first differing byte) unless `actual` holds exactly `expected`'s bytes. */
export function assertSameBytes (actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  if (actual.byteLength !== expected.byteLength) assert.fail(`${what}: ${actual.byteLength} bytes, expected ${expected.byteLength}`)
  if (Buffer.compare(actual, expected) === 0) return
  let i = 0
  while (actual[i] === expected[i]) i++
  assert.fail(`${what}: byte ${i} of ${actual.byteLength} is ${actual[i]}, expected ${expected[i]}`)
}
