// The message shape custody and release share: a request names blocks (at most `max` CIDs), the
// reply answers each with a boolean, in order. One codec for both protocols' decoders.
import { CID } from 'multiformats/cid'
import type { RpcProtocolError } from '../net/index.ts'

/** request/reply decoders for a CID[] -> boolean[] protocol named `what`, errors of class `Err`. */
export function cidFlags (what: string, max: number, Err: new (message: string) => RpcProtocolError): { request: (v: unknown) => CID[], reply: (v: unknown, request: CID[]) => boolean[] } {
  return {
    request: (v) => {
      if (!Array.isArray(v) || v.length > max) throw new Err(`${what} request: expected an array of at most ${max} CIDs`)
      return v.map(x => {
        const cid = CID.asCID(x)
        if (cid === null) throw new Err(`${what} request: not a CID`)
        return cid
      })
    },
    reply: (v, request) => {
      if (!Array.isArray(v) || v.length !== request.length || !v.every(x => typeof x === 'boolean')) {
        throw new Err(`${what} reply: expected ${request.length} booleans`)
      }
      return v
    }
  }
}
