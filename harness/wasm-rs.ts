// The independent Reed–Solomon codec darkfs's own is cross-checked against in tests: the Rust
// `reed-solomon-erasure` crate, compiled to wasm (@digitaldefiance/reed-solomon-erasure.wasm).
import { readFileSync } from 'node:fs'
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm'

const wasmRs = ReedSolomonErasure.fromBytes(readFileSync(new URL(import.meta.resolve('@digitaldefiance/reed-solomon-erasure.wasm/wasm'))))

/** Parity of `dataShards` (k of equal length) by the crate: m shards. */
export function wasmParity (dataShards: Uint8Array[], k: number, m: number): Uint8Array[] {
  const size = dataShards[0].length
  const flat = new Uint8Array(size * (k + m))
  dataShards.forEach((s, j) => flat.set(s, j * size))
  const result = wasmRs.encode(flat, k, m)
  if (result !== ReedSolomonErasure.RESULT_OK) throw new Error(`reed-solomon-erasure (wasm) encode ${k}+${m} failed: ${result}`)
  return Array.from({ length: m }, (_, i) => flat.slice((k + i) * size, (k + i + 1) * size))
}
