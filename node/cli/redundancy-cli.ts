// `darkfs up --redundancy N` (DESIGN.md §2): how many lost hosts every chunk written by this host
// survives. The default (placement.ts DEFAULT_REDUNDANCY) suits real networks; a smaller value
// spreads fragments thinner (k = min(4, live hosts - N)), e.g. so that on three hosts no host
// holds a whole chunk it did not write or pin.
import { UsageError } from '../errors.ts'

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
