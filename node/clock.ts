// Wall-clock time in nanoseconds (bigint), with sub-millisecond resolution from the
// monotonic clock, for file times (POSIX timespec).
const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()

export function nowNs (): bigint {
  return base + process.hrtime.bigint()
}

export function nsToMs (ns: bigint): number {
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6
}
