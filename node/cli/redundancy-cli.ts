// `darkfs up --redundancy N` (DESIGN.md §2): how many lost hosts every chunk written by this host
// survives. The default (placement.ts DEFAULT_REDUNDANCY) suits real networks; a smaller value
// spreads fragments thinner (k = min(4, live hosts - N)), e.g. so that on three hosts no host
// holds a whole chunk it did not write or pin.
//
// `darkfs up --data-fragments K|auto` (issue 14): the bound on the data fragments (k) of each
// new chunk, k = min(K, live hosts - N). A wider code stores less for the same N (4+2 is 1.5x,
// 8+2 1.25x); `auto` widens it as the network grows (placement.ts autoDataFragments).
import { UsageError } from '../errors.ts'
import { MAX_WIDTH } from '../keeper/index.ts'
import type { DataFragments } from '../keeper/index.ts'

/** Largest --redundancy accepted (more parity fragments than data ones buys nothing here). */
export const MAX_REDUNDANCY = 16

/** `--redundancy N` -> N, or undefined for the default. */
export function parseRedundancy (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > MAX_REDUNDANCY) {
    throw new UsageError(`--redundancy takes a whole number of hosts from 0 to ${MAX_REDUNDANCY}, got ${JSON.stringify(v)}`)
  }
  return n
}

/**
 * `--data-fragments K|auto` -> K or 'auto', or undefined for the default (k <= 4). K + the
 * redundancy (`redundancy`, default 2) may not exceed MAX_WIDTH fragments per chunk.
 */
export function parseDataFragments (v: string | undefined, redundancy: number): DataFragments | undefined {
  if (v === undefined) return undefined
  if (v === 'auto') return 'auto'
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1 || n > MAX_WIDTH) {
    throw new UsageError(`--data-fragments takes auto or a whole number of data fragments per chunk from 1 to ${MAX_WIDTH}, got ${JSON.stringify(v)}`)
  }
  if (n + redundancy > MAX_WIDTH) {
    throw new UsageError(`--data-fragments ${n} with redundancy ${redundancy} makes ${n + redundancy} fragments per chunk, at most ${MAX_WIDTH}: take at most ${MAX_WIDTH - redundancy}`)
  }
  return n
}
