// st_mode type bits and their darkfs kinds.
import type { Kind } from './types.ts'

export const S_IFMT = 0o170000
export const S_ISUID = 0o4000
export const S_ISGID = 0o2000
export const S_ISVTX = 0o1000
export const PERM_MASK = 0o7777

const typeBits: Record<Kind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  chr: 0o020000,
  blk: 0o060000,
  sock: 0o140000
}

export function typeOf (kind: Kind): number {
  return typeBits[kind]
}

export function kindOf (mode: number): Kind | undefined {
  const t = mode & S_IFMT
  for (const [k, v] of Object.entries(typeBits)) if (v === t) return k as Kind
  return undefined
}
