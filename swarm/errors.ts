// Errors of the swarm room: a class per condition with a stable `name`, switched on by name,
// never by message text.

/** A frame or message from a peer that breaks the wire format or its bounds. */
export class ProtocolError extends Error {
  static override readonly name = 'ProtocolError'
  override readonly name = 'ProtocolError'
}

/** A frame that announces more bytes than MAX_MESSAGE_BYTES. */
export class MessageTooLargeError extends Error {
  static override readonly name = 'MessageTooLargeError'
  override readonly name = 'MessageTooLargeError'
  readonly size: number
  constructor (size: number, max: number) {
    super(`message of ${size} bytes is over the limit of ${max} bytes`)
    this.size = size
  }
}

/** A peer sent a block whose bytes do not hash to its CID; the peer is disconnected. */
export class WrongBlockError extends Error {
  static override readonly name = 'WrongBlockError'
  override readonly name = 'WrongBlockError'
  readonly cid: string
  readonly peer: string
  constructor (cid: string, peer: string) {
    super(`peer ${peer} sent bytes that do not match block ${cid}`)
    this.cid = cid
    this.peer = peer
  }
}

/** A CID the swarm does not move: not CIDv1, not sha2-256, or not raw / dag-cbor. */
export class UnsupportedCidError extends Error {
  static override readonly name = 'UnsupportedCidError'
  override readonly name = 'UnsupportedCidError'
}

/** A peer has more outstanding wants (or pushes) than the bound allows. */
export class TooManyRequestsError extends Error {
  static override readonly name = 'TooManyRequestsError'
  override readonly name = 'TooManyRequestsError'
}

/** None of the given peers delivered the block(s) (they lack them, are gone, or misbehaved). */
export class BlockNotFoundError extends Error {
  static override readonly name = 'BlockNotFoundError'
  override readonly name = 'BlockNotFoundError'
  readonly cids: string[]
  constructor (cids: string[], detail: string) {
    super(`could not fetch ${cids.length === 1 ? `block ${cids[0]}` : `${cids.length} blocks`}: ${detail}`)
    this.cids = cids
  }
}

/** The swarm was stopped (or never started) while a call needed it. */
export class SwarmStoppedError extends Error {
  static override readonly name = 'SwarmStoppedError'
  override readonly name = 'SwarmStoppedError'
  constructor () {
    super('the swarm is not running')
  }
}

/** A stream to a peer closed while requests on it were outstanding. */
export class PeerGoneError extends Error {
  static override readonly name = 'PeerGoneError'
  override readonly name = 'PeerGoneError'
  readonly peer: string
  constructor (peer: string, detail?: string) {
    super(`peer ${peer} is gone${detail !== undefined ? `: ${detail}` : ''}`)
    this.peer = peer
  }
}
