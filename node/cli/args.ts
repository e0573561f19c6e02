// The command line's grammar (DESIGN.md §8): every command, its arguments and options, and its
// help, parsed with node:util parseArgs. Strict: an option the command does not know, a value
// missing or given to a flag, a repeated single option are usage errors found before the
// command does anything. `--x=y`, grouped short flags (`rm -rf`) and `--` work as usual.
import { parseArgs } from 'node:util'
import { UsageError } from '../errors.ts'

interface Option {
  type: 'string' | 'boolean'
  short?: string
  /** Only the short form exists (`ls -l`, not `ls --long`): the long name is internal. */
  shortOnly?: boolean
  /** May be given more than once (string options). */
  repeat?: boolean
  /** Placeholder of the value in the help. */
  value?: string
  help: string
}

interface Command {
  /** Arguments, as shown in the usage line. */
  args: string
  summary: string
  options: Record<string, Option>
}

const json: Record<string, Option> = { json: { type: 'boolean', help: 'print JSON' } }

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, Option> = {
  data: { type: 'string', value: 'DIR', help: 'the data dir (default $DARKFS_DATA, else ~/.darkfs)' },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
  version: { type: 'boolean', help: 'print the version and exit' }
}

export const COMMANDS: Record<string, Command> = {
  init: {
    args: '',
    summary: 'make a data dir, for a new network or one whose key you have',
    options: {
      'new-network': { type: 'boolean', help: 'start a new network (writes its key)' },
      'network-key': { type: 'string', value: 'FILE', help: 'the key file of the network to join' },
      invite: { type: 'string', value: 'STRING', help: 'join the network of an invite (`darkfs invite` on a member): its key and member addresses' }
    }
  },
  up: {
    args: '',
    summary: 'run this host (until SIGINT/SIGTERM or `darkfs leave`)',
    options: {
      listen: { type: 'string', repeat: true, value: 'MULTIADDR', help: 'address to listen on (repeatable)' },
      join: { type: 'string', repeat: true, value: 'MULTIADDR', help: 'a member to join through (repeatable; saved)' },
      announce: { type: 'string', repeat: true, value: 'MULTIADDR', help: 'address told to peers (repeatable)' },
      'allow-from': { type: 'string', repeat: true, value: 'CIDR', help: 'accept connections only from these networks (repeatable)' },
      'max-connections': { type: 'string', value: 'N', help: 'connections this host keeps open at most: its XOR neighbours and a few long links (default 64)' },
      mount: { type: 'string', value: 'DIR', help: 'mount the volume on DIR (FUSE)' },
      'init-if-needed': { type: 'boolean', help: 'make the data dir with a new network if it has none' },
      invite: { type: 'string', value: 'STRING', help: 'on a fresh data dir: init with this invite, then run (on one of its network: joins through it)' },
      'no-restart': { type: 'boolean', help: 'run the host in this process, not in a worker restarted when it dies (for systemd)' },
      'max-upload': { type: 'string', value: 'RATE', help: 'cap on data upload (RATE: 1mbit, 500kbit, 2MiB)' },
      'max-download': { type: 'string', value: 'RATE', help: 'cap on data download' },
      uplink: { type: 'string', value: 'RATE', help: "this host's uplink, told to peers (default: measured)" },
      'failure-timeout': { type: 'string', value: 'SECONDS', help: 'time before an unreachable host counts as gone' },
      'repair-delay': { type: 'string', value: 'SECONDS', help: 'time a gone host may be away before its fragments are rebuilt while its chunks have k left (default 259200, 72 h; with only --failure-timeout given: that, no lazy window)' },
      'at-risk-delay': { type: 'string', value: 'SECONDS', help: 'within the repair delay, time a chunk left with k live fragments waits for its away holders before one is rebuilt (default 172800, 48 h)' },
      redundancy: { type: 'string', value: 'N', help: 'lost hosts new chunks survive (default 2)' },
      'data-fragments': { type: 'string', value: 'K', help: 'data fragments per new chunk at most, as live hosts allow (default 4), or auto: wider as the network grows' },
      codec: { type: 'string', value: 'CODE', help: 'erasure code of new chunks: rs (default) or clay (a repair moves less; written once every member reads it)' },
      cache: { type: 'string', value: 'MIB', help: 'memory for decoded chunks, in MiB (default 128, less on a machine under 2 GiB of RAM: a sixteenth of it, at least 32; 0: none)' },
      api: { type: 'string', value: 'HOST:PORT', help: 'serve the control API on TCP too (loopback, private or VPN address; bearer token in DATA/api.token)' },
      'api-rate': { type: 'string', value: 'N', help: 'requests per second each --api client may make (default 100)' },
      'on-event': { type: 'string', value: 'CMD', help: 'run CMD (/bin/sh -c) per event, the event as JSON on its stdin (`darkfs events`)' },
      log: { type: 'string', value: 'LEVEL', help: 'silent | error | info | debug | trace (default error; DEBUG adds namespaces)' },
      'log-format': { type: 'string', value: 'FORMAT', help: 'text | json: log lines on stderr as text (default) or one JSON object each {time, level, namespace, msg}' }
    }
  },
  invite: {
    args: '',
    summary: 'print an invite: one string a new host joins with (darkfs up --invite STRING); it carries the network key, so it is a secret: give it only to hosts you trust',
    options: {
      expires: { type: 'string', value: 'DURATION', help: 'how long it is accepted: 90s, 30m, 24h (default), 7d, at most 365d' }
    }
  },
  heal: { args: '', summary: 'repair every chunk now, treating unreachable hosts as gone', options: {} },
  leave: { args: '', summary: 'hand this host\'s data to the others, then stop it', options: {} },
  peers: { args: '', summary: 'list the connected peers', options: json },
  events: { args: '', summary: 'print what happens to this host and its network as it happens (until Ctrl-C)', options: { json: { type: 'boolean', help: 'one JSON object per line' } } },
  status: {
    args: '',
    summary: 'this host, its peers, its disk and the health of every chunk, as this host last saw it (each figure with its age)',
    options: {
      ...json,
      survey: { type: 'boolean', help: 'ask every holder of every chunk now (slow on many chunks) instead of answering from what this host keeps' }
    }
  },
  put: { args: 'LOCAL PATH', summary: 'copy a local file into the volume', options: {} },
  get: { args: 'PATH LOCAL', summary: 'copy a file of the volume to a local file', options: {} },
  cat: { args: 'PATH[@VERSION]', summary: 'print a file (or an old version of it)', options: {} },
  ls: { args: '[PATH]', summary: 'list a directory', options: { long: { type: 'boolean', short: 'l', shortOnly: true, help: 'long listing' } } },
  stat: { args: 'PATH', summary: 'show a file\'s metadata', options: json },
  mkdir: { args: 'PATH', summary: 'make a directory', options: { parents: { type: 'boolean', short: 'p', shortOnly: true, help: 'make parents as needed; no error if it exists' } } },
  mv: { args: 'SRC DST', summary: 'rename or move', options: {} },
  rm: {
    args: 'PATH',
    summary: 'remove a file (or a directory with -r)',
    options: {
      recursive: { type: 'boolean', short: 'r', shortOnly: true, help: 'remove a directory and everything under it' },
      force: { type: 'boolean', short: 'f', shortOnly: true, help: 'accepted for habit; changes nothing' }
    }
  },
  log: { args: 'PATH', summary: 'list the versions of a file', options: json },
  conflicts: { args: '', summary: 'list the conflict copies', options: json },
  resolve: {
    args: 'PATH',
    summary: 'resolve the conflict at PATH (one of --keep-name-holder, --keep SIBLING, --keep-both)',
    options: {
      'keep-name-holder': { type: 'boolean', help: 'keep the version at PATH; the copies go (their versions stay in `log PATH`)' },
      keep: { type: 'string', value: 'SIBLING', help: 'keep this copy\'s content at PATH (its name or path); the copies go' },
      'keep-both': { type: 'boolean', help: 'keep every copy as a plain file named "NAME (conflict from HOST DATE).EXT"' },
      ...json
    }
  },
  pin: { args: 'PATH', summary: 'keep a full local copy of PATH (for offline use)', options: {} },
  unpin: { args: 'PATH', summary: 'stop keeping PATH here', options: {} },
  help: { args: '[COMMAND]', summary: 'print the help (of a command)', options: {} }
}

/** A usage error found while parsing, with the command it was for ('' when none is known). */
export class ArgvError extends UsageError {
  readonly command: string
  constructor (message: string, command: string) {
    super(message)
    this.command = command
  }
}

export interface Parsed {
  /** The command ('' when none was given). */
  cmd: string
  args: string[]
  /** Options by long name (values of string options as lists, in order given). */
  values: Record<string, string[] | boolean | undefined>
}

function flag (name: string, o: Option): string {
  return o.shortOnly === true ? `-${o.short!}` : `--${name}`
}

function optionLines (options: Record<string, Option>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const left = `${o.short !== undefined && o.shortOnly !== true ? `-${o.short}, ` : ''}${flag(name, o)}${o.value !== undefined ? ` ${o.value}` : ''}`
    return `  ${left.padEnd(28)} ${o.help}`
  })
}

/** A command's synopsis: its options (or [OPTIONS] when many) and arguments. */
function synopsis (cmd: string): string {
  const c = COMMANDS[cmd]
  const opts = Object.keys(c.options).length > 4
    ? ['[OPTIONS]']
    : Object.entries(c.options).map(([name, o]) => `[${flag(name, o)}${o.value !== undefined ? ` ${o.value}` : ''}]${o.repeat === true ? '...' : ''}`)
  return [cmd, ...opts, c.args].filter(s => s !== '').join(' ')
}

/** The overview: every command on one line. */
export function usage (): string {
  const lines = ['usage:']
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${`darkfs ${synopsis(name)}`.padEnd(50)} ${c.summary}`)
  lines.push('', 'options of every command:', ...optionLines(GLOBAL_OPTIONS), '', "`darkfs COMMAND --help` shows a command's options.")
  return lines.join('\n')
}

/** The help of one command. */
export function commandHelp (cmd: string): string {
  const c = COMMANDS[cmd]
  const lines = [`usage: darkfs [--data DIR] ${synopsis(cmd)}`, '', c.summary]
  if (Object.keys(c.options).length > 0) lines.push('', 'options:', ...optionLines(c.options))
  lines.push('', 'options of every command:', ...optionLines(GLOBAL_OPTIONS))
  return lines.join('\n')
}

type Config = NonNullable<Parameters<typeof parseArgs>[0]>['options']

function toConfig (options: Record<string, Option>): Config {
  const out: Config = {}
  for (const [name, o] of Object.entries(options)) {
    out[name] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.type === 'string' ? { multiple: true } : {}) }
  }
  return out
}

/** parseArgs' errors as one line of ours (`unknown option -q`, `--listen needs a value`). */
function usageError (err: any): Error {
  const msg = String(err?.message ?? err)
  const quoted = /'(-[^' ]+)/.exec(msg)?.[1]
  switch (err?.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return new UsageError(`unknown option ${quoted ?? msg}`)
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new UsageError(/argument missing|ambiguous/.test(msg) ? `${quoted ?? 'an option'} needs a value` : `${quoted ?? 'an option'} takes no value`)
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return new UsageError(`unexpected argument: ${msg}`)
    default: return err
  }
}

/**
 * Parse argv: the command is the first argument that is not an option (global options may come
 * before or after it). Throws UsageError for an unknown command or option, a missing value, a
 * value given to a flag, a short-only option written long, or a single option given twice.
 */
export function parse (argv: string[]): Parsed {
  try {
    return parseStrict(argv)
  } catch (err: any) {
    if (err instanceof ArgvError || !(err instanceof UsageError)) throw err
    throw new ArgvError(err.message, commandOf(argv))
  }
}

/** The known command named in argv, if any (for the pointer to its help). */
function commandOf (argv: string[]): string {
  try {
    const first = parseArgs({ args: argv, options: toConfig(allOptions()), strict: false, allowPositionals: true }).positionals[0] ?? ''
    return Object.hasOwn(COMMANDS, first) ? first : ''
  } catch { return '' } // no command to point at: the caller reports the parse error itself
}

function allOptions (): Record<string, Option> {
  const all: Record<string, Option> = { ...GLOBAL_OPTIONS }
  for (const c of Object.values(COMMANDS)) Object.assign(all, c.options)
  return all
}

function parseStrict (argv: string[]): Parsed {
  // first pass, lenient: where is the command?
  let cmd = ''
  try {
    cmd = parseArgs({ args: argv, options: toConfig(allOptions()), strict: false, allowPositionals: true }).positionals[0] ?? ''
  } catch { /* the strict pass below reports it */ }
  const known = Object.hasOwn(COMMANDS, cmd)
  const options = known ? { ...GLOBAL_OPTIONS, ...COMMANDS[cmd].options } : GLOBAL_OPTIONS
  let r
  try {
    r = parseArgs({ args: argv, options: toConfig(options), strict: true, allowPositionals: true, tokens: true })
  } catch (err: any) {
    // an unknown command is named first, unless the bad option came before it (and may have
    // been meant to take it as its value)
    const bad = /'(-[^' ]+)/.exec(String(err?.message))?.[1]
    const at = bad === undefined ? -1 : argv.findIndex(a => a === bad || a.startsWith(bad + '=') || (!bad.startsWith('--') && a.startsWith('-') && !a.startsWith('--') && a.includes(bad.slice(1))))
    if (!known && cmd !== '' && (at < 0 || argv.indexOf(cmd) < at)) throw new UsageError(`unknown command '${cmd}'`)
    throw usageError(err)
  }
  if (!known && cmd !== '') throw new UsageError(`unknown command '${cmd}'`)
  for (const t of r.tokens as Array<{ kind: string, name?: string, rawName?: string }>) {
    if (t.kind !== 'option' || t.name === undefined) continue
    const o = options[t.name]
    if (o?.shortOnly === true && t.rawName?.startsWith('--') === true) throw new UsageError(`unknown option ${t.rawName}`)
  }
  const values = r.values as Parsed['values']
  for (const [name, o] of Object.entries(options)) {
    const v = values[name]
    if (o.type === 'string' && o.repeat !== true && Array.isArray(v) && v.length > 1) throw new UsageError(`--${name} given more than once`)
  }
  const [, ...args] = r.positionals
  return { cmd, args, values }
}

/** The value of a single string option. */
export function one (p: Parsed, name: string): string | undefined {
  const v = p.values[name]
  return Array.isArray(v) ? v[0] : undefined
}

/** The values of a repeatable string option (undefined when not given). */
export function many (p: Parsed, name: string): string[] | undefined {
  const v = p.values[name]
  return Array.isArray(v) ? v : undefined
}

export function has (p: Parsed, name: string): boolean {
  return p.values[name] === true
}
