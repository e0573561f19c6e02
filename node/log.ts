// Logs (DESIGN.md §8): @libp2p/logger, the logger libp2p itself uses, with one namespace per
// room and part: `darkfs:<room>:<part>` (darkfs:keeper:repair, darkfs:net:sync, ...). A logger
// has three levels, each its own namespace, as in libp2p:
//   log.error(...)  darkfs:keeper:repair:error   a failure (caught and survived, with context)
//   log(...)        darkfs:keeper:repair         what the part does (placement, peers, acks)
//   log.trace(...)  darkfs:keeper:repair:trace   per message / per block detail
// What is printed (on stderr) follows the DEBUG convention: DEBUG=darkfs:* (or libp2p:*, or
// both, comma-separated, `-` to exclude) names the namespaces; `darkfs up --log LEVEL` sets
// darkfs's own by level, and DEBUG adds to it. Without either, errors are printed.
// `darkfs up --log-format json` (setLogFormat) prints each of darkfs's log lines, and the host's
// own notes on stderr (report()), as one JSON object per line for log shippers:
//   {"time":"2026-01-01T12:00:00.000Z","level":"error","namespace":"darkfs:keeper:repair","msg":"..."}
// level is error, info or trace (the logger's three); namespace is without the level suffix.
// (Namespaces of libp2p's own loggers, named through DEBUG, keep debug's text form: their
// loggers are made inside libp2p, out of reach of this file.)
//
// Part of node/'s vocabulary: every room may import it.
import { format as formatText } from 'node:util'
import { logger as libp2pLogger, enable } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'

export type { Logger }

/** `--log` levels, quietest first. */
export const LOG_LEVELS = ['silent', 'error', 'info', 'debug', 'trace'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Bumped by setLogLevel: loggers look their trace level up again. */
let generation = 0

/** `--log-format` values. */
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = typeof LOG_FORMATS[number]

let logFormat: LogFormat = 'text'

export function isLogFormat (s: string): s is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(s)
}

/** Log lines as text (debug's form) or one JSON object per line. Loggers made before follow it. */
export function setLogFormat (format: LogFormat): void {
  logFormat = format
}

export function getLogFormat (): LogFormat {
  return logFormat
}

type Level = 'error' | 'info' | 'trace'

/** One JSON log line. */
export function jsonLine (level: Level, namespace: string, msg: string, time = new Date()): string {
  return JSON.stringify({ time: time.toISOString(), level, namespace, msg }) + '\n'
}

const ANSI = /\u001b\[[0-9;]*m/g

/**
 * Where a darkfs logger writes (debug's `log` of an instance, called with the instance as this
 * and the arguments debug's formatArgs made): as debug would in text, as one object in JSON.
 */
function sink (this: { namespace: string, useColors?: boolean }, ...args: unknown[]): void {
  if (logFormat === 'text') { process.stderr.write(formatText(...args) + '\n'); return }
  const ns = this.namespace
  const a = [...args]
  if (this.useColors === true) a.pop() // debug's `+12ms` suffix
  // formatArgs put the date (when not colouring) and the namespace before the message, on
  // every line of it when colouring: both go, the fields carry them
  const first = String(a[0]).replace(ANSI, '').split('\n').map(l => {
    const i = l.indexOf(`${ns} `)
    return i >= 0 ? l.slice(i + ns.length + 1) : l
  }).join('\n')
  const msg = formatText(first, ...a.slice(1)).replace(ANSI, '')
  const level: Level = ns.endsWith(':error') ? 'error' : ns.endsWith(':trace') ? 'trace' : 'info'
  process.stderr.write(jsonLine(level, level === 'info' ? ns : ns.slice(0, ns.lastIndexOf(':')), msg))
}

/**
 * A note of the host to whoever watches it (joined, retrying, an internal error survived):
 * `darkfs: MSG` on stderr, or one JSON line under --log-format json. Always printed.
 */
export function report (msg: string, level: Level = 'info', namespace = 'darkfs:cli'): void {
  if (logFormat === 'json') process.stderr.write(jsonLine(level, namespace, msg))
  else process.stderr.write(`darkfs: ${msg}\n`)
}

function withSink<T extends object> (d: T): T {
  (d as any).log = sink
  return d
}

/** The logger of one part: `logger('keeper:repair')` logs as darkfs:keeper:repair. */
export function logger (part: string): Logger {
  const name = `darkfs:${part}`
  const log = withSink(libp2pLogger(name))
  withSink(log.error)
  // @libp2p/logger decides whether trace prints when the logger is made, and loggers are made
  // as their modules load, before `--log` is read: trace is looked up again after setLogLevel
  let trace = withSink(log.trace)
  let seen = generation
  log.trace = (formatter: any, ...args: any[]): void => {
    if (seen !== generation) { trace = withSink(libp2pLogger(name).trace); seen = generation }
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
