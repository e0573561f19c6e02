// Errors of the metadata tree, with stable names (see node/errors.ts for the pattern).

/** A malformed, oversized, badly signed or causally impossible op. Never stored. */
export class InvalidOpError extends Error {
  static override readonly name = 'InvalidOpError'
  override readonly name = 'InvalidOpError'
  /** The CID of the op when it could be derived. */
  readonly cid?: string
  constructor (message: string, cid?: string) {
    super(cid !== undefined ? `invalid op ${cid}: ${message}` : `invalid op: ${message}`)
    this.cid = cid
  }
}

/** A call on a closed tree. */
export class TreeClosedError extends Error {
  static override readonly name = 'TreeClosedError'
  override readonly name = 'TreeClosedError'
  constructor () {
    super('the metadata tree is closed')
  }
}
