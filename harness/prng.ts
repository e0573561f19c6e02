// A seeded pseudo-random generator for schedules that must replay from a printed seed (the
// fault run, the mount soak): mulberry32, numbers in [0, 1). Not for anything secret.
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Integers in [0, n) from prng(seed), so a failure replays from its printed seed. */
export function prngInts (seed: number): (n: number) => number {
  const r = prng(seed)
  return (n: number) => Math.floor(r() * n)
}

/** `length` deterministic bytes from `seed` (xorshift32): test data a failure can replay. */
export function seededBytes (length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 255
  }
  return out
}
