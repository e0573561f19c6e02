// How values cross the control socket (control.ts serves, client.ts calls): JSON, with the
// shapes JSON lacks wrapped. Shared by both ends, and light: the CLI loads it for every command.

/** Arguments: JSON, with { $bytes: base64 } for binary and { $bigint: '...' } for times. */
export function decodeArg (a: any): any {
  if (a !== null && typeof a === 'object') {
    if (typeof a.$bytes === 'string') return new Uint8Array(Buffer.from(a.$bytes, 'base64'))
    if (typeof a.$bigint === 'string') return BigInt(a.$bigint)
    if (Array.isArray(a)) return a.map(decodeArg)
    const out: any = {}
    for (const [k, v] of Object.entries(a)) out[k] = decodeArg(v)
    return out
  }
  return a
}

export function encodeArg (a: any): any {
  if (a instanceof Uint8Array) return { $bytes: Buffer.from(a).toString('base64') }
  if (typeof a === 'bigint') return { $bigint: a.toString() }
  if (Array.isArray(a)) return a.map(encodeArg)
  if (a !== null && typeof a === 'object' && !(a instanceof Date)) {
    const out: any = {}
    for (const [k, v] of Object.entries(a)) if (typeof v !== 'function') out[k] = encodeArg(v)
    return out
  }
  return a
}
