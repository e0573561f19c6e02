// Logs (DESIGN.md §8): @libp2p/logger, the logger libp2p itself uses, with one namespace per
// room and part: `darkfs:<room>:<part>` (darkfs:keeper:repair, darkfs:net:sync, ...). A logger
// has three levels, each its own namespace, as in libp2p:
//   log.error(...)  darkfs:keeper:repair:error   a failure (caught and survived, with context)
//   log(...)        darkfs:keeper:repair         what the part does (placement, peers, acks)
//   log.trace(...)  darkfs:keeper:repair:trace   per message / per block detail
// What is printed (on stderr) follows the DEBUG convention: DEBUG=darkfs:* (or libp2p:*, or
// both, comma-separated, `-` to exclude) names the namespaces; `darkfs up --log LEVEL` sets
// darkfs's own by level, and DEBUG adds to it. Without either, errors are printed.
//
// Part of node/'s vocabulary: every room may import it.
import { logger as libp2pLogger, enable } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'

export type { Logger }

/** `--log` levels, quietest first. */
export const LOG_LEVELS = ['silent', 'error', 'info', 'debug', 'trace'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Bumped by setLogLevel: loggers look their trace level up again. */
let generation = 0

/** The logger of one part: `logger('keeper:repair')` logs as darkfs:keeper:repair. */
export function logger (part: string): Logger {
  const name = `darkfs:${part}`
  const log = libp2pLogger(name)
  // @libp2p/logger decides whether trace prints when the logger is made, and loggers are made
  // as their modules load, before `--log` is read: trace is looked up again after setLogLevel
  let trace = log.trace
  let seen = generation
  log.trace = (formatter: any, ...args: any[]): void => {
    if (seen !== generation) { trace = libp2pLogger(name).trace; seen = generation }
    trace(formatter, ...args)
  }
  return log
}

/** The DEBUG namespaces of a level (info and debug are the same namespaces: weald has no finer level). */
export function namespacesOf (level: LogLevel): string {
  switch (level) {
    case 'silent': return ''
    case 'error': return 'darkfs:*:error'
    case 'info':
    case 'debug': return 'darkfs:*,-darkfs:*:trace'
    case 'trace': return 'darkfs:*,darkfs:*:trace' // @libp2p/logger prints trace only when a :trace namespace is named
  }
}

export function isLogLevel (s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s)
}

/**
 * Sets what is printed: darkfs's namespaces for `level`, plus whatever DEBUG names (so
 * `DEBUG=libp2p:dialer darkfs up --log debug` shows both). Without a level, errors.
 */
export function setLogLevel (level: LogLevel = 'error', env: string | undefined = process.env.DEBUG): void {
  const parts = [namespacesOf(level), env ?? ''].filter(s => s !== '')
  enable(parts.join(','))
  generation++
}

/** A peer id, short for log lines: the 8 characters after the common `12D3KooW` prefix. */
export function shortPeer (peer: string | { toString: () => string }): string {
  const s = peer.toString()
  return s.startsWith('12D3KooW') ? s.slice(8, 16) : s.slice(0, 8)
}

/** Peers, short: `[AbCdEfGh, ...]`. */
export function shortPeers (peers: Iterable<string>): string {
  return `[${[...peers].map(shortPeer).join(', ')}]`
}

/** A CID (or its string), short for log lines: its last 8 characters (the prefix is the same for all). */
export function shortCid (cid: { toString: () => string }): string {
  return cid.toString().slice(-8)
}
