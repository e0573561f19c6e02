// The swarm's loggers: @libp2p/logger (the logger libp2p itself uses), one namespace per part,
// `darkfs:swarm:<part>` (darkfs:swarm:pull, darkfs:swarm:serve, ...). swarm/ imports nothing of
// node/, so it names its own; node/log.ts decides what is printed (the DEBUG convention and
// `darkfs up --log LEVEL` both enable namespaces of the one @libp2p/logger instance).
//   log.error(...)  a failure caught and survived, with its context (peer, CID)
//   log(...)        what the part does
//   log.trace(...)  per message / per block detail: @libp2p/logger enables it when the logger is
//                   made, so a module-level logger traces only when DEBUG named :trace at start
import { logger as libp2pLogger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'

export type { Logger }

/** The logger of one swarm part: `logger('pull')` logs as darkfs:swarm:pull. */
export function logger (part: string): Logger {
  return libp2pLogger(`darkfs:swarm:${part}`)
}

/** A peer id, short: the 8 characters after the common `12D3KooW` prefix. */
export function shortPeer (peer: string): string {
  return peer.startsWith('12D3KooW') ? peer.slice(8, 16) : peer.slice(0, 8)
}

/** A CID (or its string), short: its last 8 characters (the prefix is the same for all blocks). */
export function shortCid (cid: { toString: () => string }): string {
  return cid.toString().slice(-8)
}
