// darkfs command line: the contract of DESIGN.md §8. `init` and `up` work on the data dir;
// every other command talks to the running host over its control socket. Exit 0 on success;
// otherwise one clear line on stderr and a non-zero status (2 for usage errors).
import { mkdir } from 'node:fs/promises'
import { blameFile, dataDir, init, isInitialised, loadConfig, withConfig, NETWORK_KEY_FILE } from './config.ts'
import { ControlClient } from './client.ts'
import { UsageError } from '../errors.ts'
import type { Stats } from '../types.ts'
import { parse, usage, commandHelp, one, many, has, COMMANDS, ArgvError } from './args.ts'
import type { Parsed } from './args.ts'
import type { DaemonOptions } from './daemon.ts'
import type { Codec } from '../data/index.ts'
import type { LogLevel, LogFormat } from '../log.ts'
import type { OpsEventDetail } from '../tree/index.ts'
import { VERSION } from './version.ts'

function need (p: Parsed, n: number, what: string): string[] {
  if (p.args.length !== n) throw new UsageError(`${p.cmd} takes ${what}`)
  return p.args
}

function modeString (st: Pick<Stats, 'mode' | 'kind'>): string {
  const t = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', chr: 'c', blk: 'b', sock: 's' }[st.kind]
  const rwx = (n: number): string => `${(n & 4) !== 0 ? 'r' : '-'}${(n & 2) !== 0 ? 'w' : '-'}${(n & 1) !== 0 ? 'x' : '-'}`
  return t + rwx(st.mode >> 6) + rwx(st.mode >> 3) + rwx(st.mode)
}

function toJson (v: unknown): string {
  return JSON.stringify(v, (_k, x) => typeof x === 'bigint' ? x.toString() : x)
}

/** `darkfs pin` result line (PinStats of node/pins.ts). */
function pinLine (path: string, r: { files: number, chunks: number, fetched: number, missing: number, arriving?: number }): string {
  const arriving = (r.arriving ?? 0) > 0 ? `; ${r.arriving} arriving through a relay` : ''
  const left = arriving + (r.missing > 0 ? `; ${r.missing} not reachable yet (fetched when their holders are back)` : '')
  return `pinned ${path}: ${r.files} files, ${r.chunks} chunks, ${r.fetched} fetched${left}`
}

function out (line: string): void {
  process.stdout.write(line + '\n')
}

/**
 * Run one command line. Everything about the line itself (the command, its options and their
 * values, --help, --version) is checked before the command does anything; a usage error is one
 * line on stderr with a pointer to the help, and exit status 2.
 */
async function run (argv: string[]): Promise<number> {
  let p: Parsed | undefined
  try {
    p = parse(argv)
    return await command(p)
  } catch (err: any) {
    if (!(err instanceof UsageError)) throw err
    const cmd = err instanceof ArgvError ? err.command : p?.cmd ?? ''
    const help = cmd !== '' && cmd !== 'help' ? `darkfs ${cmd} --help` : 'darkfs --help'
    process.stderr.write(`darkfs: ${String(err.message).split('\n')[0]} (see ${help})\n`)
    return 2
  }
}

async function command (p: Parsed): Promise<number> {
  if (has(p, 'version')) { out(`darkfs ${VERSION}`); return 0 }
  if (has(p, 'help')) { out(p.cmd === '' ? usage() : commandHelp(p.cmd)); return 0 }
  const dir = dataDir(one(p, 'data'))
  const json = has(p, 'json')
  switch (p.cmd) {
    case '':
      out(usage())
      return 2
    case 'help': {
      if (p.args.length > 1) throw new UsageError('help takes at most one COMMAND')
      const [of] = p.args
      if (of !== undefined && !Object.hasOwn(COMMANDS, of)) throw new UsageError(`unknown command '${of}'`)
      out(of === undefined ? usage() : commandHelp(of))
      return 0
    }
    case 'init': {
      need(p, 0, 'no arguments')
      const r = await init(dir, { newNetwork: has(p, 'new-network'), networkKey: one(p, 'network-key'), invite: one(p, 'invite') })
      out(`initialised ${dir}`)
      out(`peer id ${r.peerId}`)
      if (r.join.length > 0) out(`joins through ${r.join.join(' ')}`)
      out(`network key ${r.keyFile} (give new hosts an invite: darkfs invite; or this file: darkfs init --network-key FILE)`)
      return 0
    }
    case 'up': {
      need(p, 0, 'no arguments')
      // the data dir's config.json sets the flags not given here (flags win; config.ts)
      const initialised = await isInitialised(dir)
      const q = initialised ? withConfig(p, await loadConfig(dir)) : p
      const settings = await upSettings(dir, q).catch(err => { throw blameFile(err, dir, (q as { fromFile?: Set<string> }).fromFile) })
      jsonErrors = settings.logFormat === 'json'
      const invite = one(q, 'invite')
      if (invite !== undefined) {
        if (initialised) settings.daemon.join = [...settings.daemon.join ?? [], ...await sameNetwork(dir, invite)]
        else {
          const r = await init(dir, { invite })
          out(`initialised ${dir} from the invite (joins through ${r.join.length} member address${r.join.length === 1 ? '' : 'es'})`)
        }
      } else if (has(q, 'init-if-needed') && !initialised) {
        const r = await init(dir, { newNetwork: true })
        out(`initialised ${dir} with a new network (key: ${r.keyFile})`)
      }
      const { isWorker, supervise } = await import('./supervisor.ts')
      // the host runs in a worker this process restarts when it dies (node/cli/supervisor.ts)
      if (!has(q, 'no-restart') && !isWorker()) {
        const { setLogFormat, report } = await import('../log.ts')
        setLogFormat(settings.logFormat)
        const { notifyReady } = await import('./notify.ts')
        return await supervise(process.argv.slice(2), {
          mount: settings.mount,
          say: line => { report(line) },
          ready: () => { void notifyReady(readyStatus(settings)) }
        })
      }
      return await up(settings)
    }
    case 'invite': {
      need(p, 0, 'no arguments')
      const client = new ControlClient(dir)
      const r = await client.request('POST', '/v1/invites', one(p, 'expires') !== undefined ? { expires: one(p, 'expires') } : {})
      out(r.invite)
      if (process.stderr.isTTY === true) {
        process.stderr.write(`darkfs: valid until ${new Date(r.expires).toISOString()}; it carries the network key: give it only to a host you trust, which joins with: darkfs up --invite STRING\n`)
      }
      return 0
    }
  }
  const client = new ControlClient(dir)
  switch (p.cmd) {
    case 'heal': case 'leave': {
      need(p, 0, 'no arguments')
      const { withProgress, healShortfall } = await import('./keep-cli.ts')
      const result: any = await withProgress(client, p.cmd, process.stderr.isTTY, s => process.stderr.write(s))
      if (p.cmd === 'leave') out('left: every chunk is fully redundant without this host; it stops now')
      const short = healShortfall(result)
      if (short !== undefined) { process.stderr.write(`darkfs: ${short}\n`); return 1 }
      return 0
    }
    case 'status': {
      const s = await client.get(has(p, 'survey') ? '/v1/status?survey=1' : '/v1/status')
      if (json) { out(toJson(s)); return 0 }
      out(`peer id   ${s.peerId}${s.offline === true ? '  (offline)' : ''}`)
      for (const a of s.addresses) out(`address   ${a}`)
      out(`peers     ${s.peers}`)
      out(`stored    ${s.bytesStored} bytes`)
      if (s.space?.full === true) out(`space     full: under ${s.space.reserve} bytes free; new blocks are refused, peers place elsewhere`)
      if (s.placement !== undefined) out(`placement ${s.placement.k}+${s.placement.m} for new chunks (redundancy ${s.placement.redundancy}, data fragments ${s.placement.dataFragments === 'auto' ? 'auto' : `at most ${s.placement.dataFragments}`})`)
      if (Array.isArray(s.fullPeers) && s.fullPeers.length > 0) out(`full      ${s.fullPeers.length} peer(s) with a full disk (left out of placement)`)
      const { chunkLines, networkLines } = await import('./status-cli.ts')
      for (const line of chunkLines(s.chunks)) out(line)
      for (const line of networkLines(s.network)) out(line)
      return 0
    }
    case 'peers': {
      const peers = await client.get('/v1/peers')
      if (json) out(toJson(peers))
      else for (const peer of peers) out(`${peer.id} ${peer.addresses.join(' ')}`)
      return 0
    }
    case 'events': {
      need(p, 0, 'no arguments')
      const cancel = new AbortController()
      const onInt = (): void => { cancel.abort(new DOMException('cancelled', 'AbortError')) }
      process.once('SIGINT', onInt)
      const { tailEvents } = await import('./events-cli.ts')
      try {
        await tailEvents(client, json, out, { signal: cancel.signal })
      } catch (err) {
        if (!cancel.signal.aborted) throw err
        return EXIT_INTERRUPTED
      } finally {
        process.off('SIGINT', onInt)
      }
      return 1
    }
    case 'put': {
      const [local, path] = need(p, 2, 'LOCAL PATH')
      // Ctrl-C cancels: the host abandons the write and deletes what it stored, here and on peers
      const cancel = new AbortController()
      const onInt = (): void => { cancel.abort(new DOMException('cancelled', 'AbortError')) }
      process.once('SIGINT', onInt)
      const { progressDrawer } = await import('./progress.ts')
      const draw = progressDrawer(process.stderr.isTTY === true, s => process.stderr.write(s))
      try {
        await client.put(local, path, { signal: cancel.signal, onProgress: draw.update })
        draw.done()
      } catch (err) {
        draw.done()
        if (!cancel.signal.aborted) throw err
        process.stderr.write(`darkfs: put cancelled: ${path} is as it was\n`)
        return EXIT_INTERRUPTED
      } finally {
        process.off('SIGINT', onInt)
      }
      return 0
    }
    case 'get': {
      const [path, local] = need(p, 2, 'PATH LOCAL')
      await client.stat(path, { follow: true }) // fail before creating the local file
      // Ctrl-C cancels: the temp file goes, the target name is left as it was
      const cancel = new AbortController()
      const onInt = (): void => { cancel.abort(new Error('cancelled')) }
      process.once('SIGINT', onInt)
      try {
        await client.getTo(path, local, { signal: cancel.signal })
      } finally {
        process.off('SIGINT', onInt)
      }
      return 0
    }
    case 'cat': {
      const [arg] = need(p, 1, 'PATH or PATH@VERSION')
      const at = arg.lastIndexOf('@')
      // PATH@VERSION reads an old version, unless the whole argument names an existing file
      if (at > 0) {
        const path = arg.slice(0, at)
        // no such file by the whole name (or the lstat failed): read it as PATH@VERSION, whose
        // download reports its own error to the user
        const exists = await client.stat(arg).then(() => true, () => false)
        if (!exists) { await client.download(path, process.stdout, arg.slice(at + 1)); return 0 }
      }
      await client.download(arg, process.stdout)
      return 0
    }
    case 'log': {
      const [path] = need(p, 1, 'PATH')
      const versions: any[] = await client.log(path)
      if (json) { out(toJson(versions)); return 0 }
      versions.forEach((v, i) => {
        const when = new Date(Number(BigInt(v.time) / 1_000_000n)).toISOString()
        out(`${String(i + 1).padStart(3)}  ${when}  ${String(v.size).padStart(12)}  ${v.author.slice(-8)}  ${v.version}`)
      })
      return 0
    }
    case 'pin': case 'unpin': {
      const [path] = need(p, 1, 'PATH')
      if (p.cmd === 'pin') out(pinLine(path, await client.pin(path)))
      else await client.unpin(path)
      return 0
    }
    case 'conflicts': {
      need(p, 0, 'no arguments')
      const list: any[] = await client.get('/v1/conflicts')
      if (json) { out(toJson(list)); return 0 }
      for (const c of list) out(c.path)
      return 0
    }
    case 'resolve': {
      const [path] = need(p, 1, 'PATH')
      const sibling = one(p, 'keep')
      const chosen = [has(p, 'keep-name-holder'), sibling !== undefined, has(p, 'keep-both')].filter(Boolean).length
      if (chosen !== 1) throw new ArgvError('give exactly one of --keep-name-holder, --keep SIBLING, --keep-both', 'resolve')
      const keep = sibling !== undefined ? { sibling } : has(p, 'keep-both') ? 'both' : 'name-holder'
      const r = await client.request('POST', '/v1/conflicts/resolve', { path, keep })
      if (json) { out(toJson(r)); return 0 }
      for (const x of r.removed) out(`removed ${x}`)
      for (const x of r.kept) out(`kept ${x.from} as ${x.to}`)
      for (const x of r.left) out(`left ${x} (changed meanwhile: still a conflict)`)
      return 0
    }
    case 'ls': {
      const [path = '/'] = p.args.length <= 1 ? p.args : need(p, 1, 'PATH')
      const st: Stats = await client.stat(path, { follow: true })
      const long = has(p, 'long')
      const entries: Array<{ name: string, stat: Stats }> = st.kind === 'dir'
        ? await client.list(path)
        : [{ name: path.split('/').pop() ?? path, stat: await client.stat(path) }]
      for (const n of entries) {
        if (!long) { out(n.name); continue }
        const s = n.stat
        const mtime = new Date(Number(BigInt(String((s.mtimeNs as any))) / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19)
        out(`${modeString(s)} ${String(s.nlink).padStart(3)} ${String(s.uid).padStart(5)} ${String(s.gid).padStart(5)} ${String(s.size).padStart(12)} ${mtime} ${n.name}`)
      }
      return 0
    }
    case 'stat': {
      const [path] = need(p, 1, 'PATH')
      const s: any = await client.stat(path)
      if (json) { out(toJson(s)); return 0 }
      out(`path   ${path}`)
      out(`kind   ${s.kind}`)
      out(`size   ${s.size}`)
      out(`mode   ${modeString(s)} (${(s.mode & 0o7777).toString(8).padStart(4, '0')})`)
      out(`ino    ${s.ino}`)
      out(`links  ${s.nlink}`)
      out(`owner  ${s.uid}:${s.gid}`)
      out(`mtime  ${new Date(s.mtimeMs).toISOString()}`)
      return 0
    }
    case 'mkdir': {
      const [path] = need(p, 1, 'PATH')
      await client.mkdir(path, { parents: has(p, 'parents') })
      return 0
    }
    case 'mv': {
      const [from, to] = need(p, 2, 'SRC DST')
      await client.rename(from, to)
      return 0
    }
    case 'rm': {
      const [path] = need(p, 1, 'PATH')
      await client.rm(path, { recursive: has(p, 'recursive') })
      return 0
    }
    default:
      throw new UsageError(`unknown command '${p.cmd}'`)
  }
}

interface UpSettings {
  daemon: DaemonOptions
  mount?: string
  log: LogLevel
  logFormat: LogFormat
}

/** Set once `up` knows its --log-format: its last error line is then a JSON line too. */
let jsonErrors = false

/** The STATUS systemd shows for a ready host. */
function readyStatus (settings: UpSettings): string {
  return settings.mount !== undefined ? `serving, mounted on ${settings.mount}` : 'serving'
}

/**
 * `up --invite` on a data dir that is already initialised: the invite must be of its network
 * (else a clear error; nothing is changed). Its addresses are joined through while it is valid.
 */
async function sameNetwork (dir: string, text: string): Promise<string[]> {
  const { readInvite, readNetworkKey } = await import('../net/index.ts')
  const invite = readInvite(text)
  const { join } = await import('node:path')
  const key = await readNetworkKey(join(dir, NETWORK_KEY_FILE))
  if (!Buffer.from(key).equals(invite.networkKey)) {
    throw new UsageError(`${dir} is already in another network (its network key is not the invite's); use a fresh --data dir for the invite`)
  }
  return invite.expiresAt > Date.now() ? invite.addresses : []
}

/**
 * `--cache MIB`: the chunk cache's bound in bytes; a whole number of MiB from 0 (no cache) to the
 * machine's RAM, else a usage error naming the flag. Undefined when not given (the daemon's
 * default, data/cache.ts defaultCacheBytes).
 */
function parseCache (text: string | undefined, ramBytes: number): number | undefined {
  if (text === undefined) return undefined
  const most = Math.floor(ramBytes / (1 << 20))
  const mib = Number(text)
  if (!/^\d+$/.test(text) || mib > most) throw new UsageError(`--cache takes a whole number of MiB from 0 to ${most} (this machine's memory), got ${JSON.stringify(text)}`)
  return mib * (1 << 20)
}

/** `up`'s options as daemon options: every value is checked before anything starts. */
async function upSettings (dir: string, p: Parsed): Promise<UpSettings> {
  const { parseRate } = await import('../net/index.ts')
  const { parseFailureTimeout } = await import('./keep-cli.ts')
  const { parseRedundancy, parseDataFragments } = await import('./redundancy-cli.ts')
  const { DEFAULT_REDUNDANCY } = await import('../keeper/index.ts')
  const { isLogLevel, LOG_LEVELS } = await import('../log.ts')
  const rate = (flag: string): number | undefined => {
    const v = one(p, flag)
    if (v === undefined) return undefined
    try { return parseRate(v) } catch (err: any) { throw new UsageError(`--${flag}: ${String(err?.message ?? err)}`) }
  }
  const api = one(p, 'api')
  if (api !== undefined) {
    const { parseApiAddress } = await import('../api/index.ts')
    parseApiAddress(api) // refused here, before anything starts
  }
  const apiRateText = one(p, 'api-rate')
  const apiRate = apiRateText === undefined ? undefined : Number(apiRateText)
  if (apiRate !== undefined && (!/^\d+$/.test(apiRateText!) || apiRate < 1)) throw new UsageError(`--api-rate takes a whole number of requests per second (at least 1), got ${JSON.stringify(apiRateText)}`)
  const maxConnectionsText = one(p, 'max-connections')
  const maxConnections = maxConnectionsText === undefined ? undefined : Number(maxConnectionsText)
  if (maxConnections !== undefined && (!/^\d+$/.test(maxConnectionsText!) || maxConnections < 2 || maxConnections > 100_000)) {
    throw new UsageError(`--max-connections takes a whole number of connections from 2 to 100000, got ${JSON.stringify(maxConnectionsText)}`)
  }
  const redundancy = parseRedundancy(one(p, 'redundancy'))
  const dataFragments = parseDataFragments(one(p, 'data-fragments'), redundancy ?? DEFAULT_REDUNDANCY)
  const codec = one(p, 'codec')
  // (data/blocks.ts CODECS; not imported: the command line starts without the data layer)
  if (codec !== undefined && codec !== 'rs' && codec !== 'clay') throw new UsageError(`--codec takes rs or clay, got ${JSON.stringify(codec)}`)
  const { machineMemory } = await import('../data/index.ts')
  const cacheBytes = parseCache(one(p, 'cache'), machineMemory())
  const log = one(p, 'log') ?? 'error'
  if (!isLogLevel(log)) throw new UsageError(`--log takes one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(log)}`)
  const { isLogFormat, LOG_FORMATS } = await import('../log.ts')
  const logFormat = one(p, 'log-format') ?? 'text'
  if (!isLogFormat(logFormat)) throw new UsageError(`--log-format takes one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(logFormat)}`)
  return {
    daemon: {
      dir,
      keep: { failureTimeoutMs: parseFailureTimeout(one(p, 'failure-timeout')), repairDelayMs: parseFailureTimeout(one(p, 'repair-delay'), 'repair-delay'), atRiskDelayMs: parseFailureTimeout(one(p, 'at-risk-delay'), 'at-risk-delay') },
      listen: many(p, 'listen'),
      join: many(p, 'join'),
      announce: many(p, 'announce'),
      allowFrom: many(p, 'allow-from'),
      maxConnections,
      maxUpload: rate('max-upload'),
      maxDownload: rate('max-download'),
      uplink: rate('uplink'),
      redundancy,
      dataFragments,
      ...(codec !== undefined ? { codec: codec as Codec } : {}),
      cacheBytes,
      api,
      apiRate,
      onEvent: one(p, 'on-event')
    },
    mount: one(p, 'mount'),
    log,
    logFormat
  }
}

async function up (settings: UpSettings): Promise<number> {
  // darkfs's namespaces for the level, plus whatever DEBUG names (node/log.ts)
  const { setLogLevel, setLogFormat, report } = await import('../log.ts')
  setLogLevel(settings.log)
  setLogFormat(settings.logFormat)
  // a background task that fails without a handler is a bug to report, not a reason to take a
  // storage host (and everything it serves) down: log it on one line and keep serving
  process.on('unhandledRejection', (err: any) => {
    report(`internal error (host keeps running): ${String(err?.stack ?? err).split('\n').slice(0, 3).join(' | ')}`, 'error')
  })
  // yamux opens an outbound stream with a write queued as a microtask; when the connection has
  // closed meanwhile (a saturated thin uplink), that write throws StreamStateError outside any
  // promise and would kill the host: only that connection is lost (forward.ts: isStreamRace)
  const { isStreamRace } = await import('../keeper/index.ts')
  process.on('uncaughtException', (err: any) => {
    if (isStreamRace(err)) { report(`connection closed under a new stream (host keeps running): ${String(err?.message)}`, 'error'); return }
    if (settings.logFormat === 'json') report(`uncaught exception, the host stops: ${String(err?.stack ?? err)}`, 'error')
    else process.stderr.write(`${String(err?.stack ?? err)}\n`)
    process.exit(1)
  })
  const { startDaemon } = await import('./daemon.ts')
  const daemon = await startDaemon(settings.daemon)
  const closers: Array<() => Promise<void>> = [daemon.close]
  for (const a of daemon.host.addresses()) out(`listening ${a}`)
  const apiAt = daemon.api.address()
  if (apiAt !== undefined) out(`api http://${apiAt.host.includes(':') ? `[${apiAt.host}]` : apiAt.host}:${apiAt.port} (token in ${settings.daemon.dir}/api.token)`)
  const mountDir = settings.mount
  if (mountDir !== undefined) {
    try {
      // a stale mount left by a killed host fails mkdir with ENOTCONN: fuse.mount() replaces it
      await mkdir(mountDir, { recursive: true }).catch((err: any) => { if (err?.code !== 'ENOTCONN') throw err })
      const fuse = await import('../../fuse/index.ts')
      const m = await fuse.mount(daemon.volume, mountDir, { onOp: daemon.metrics.fuseOp })
      // ops from peers change what the kernel has cached: drop exactly what they touched
      daemon.tree.addEventListener('ops', (e: Event) => {
        const { local, ops } = (e as CustomEvent<OpsEventDetail>).detail
        if (local) return
        for (const op of ops) for (const path of daemon.volume.changedPaths(op.body)) m.invalidate(path)
      })
      closers.push(async () => { await m.unmount() })
      out(`mounted ${mountDir}`)
    } catch (err) {
      await daemon.close()
      throw err
    }
  }
  // the stop signals are handled before anyone is told the host is ready (and may send them)
  const stopped = new Promise<void>(resolve => {
    const stop = (): void => { resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    void daemon.keep.left.then(stop) // `darkfs leave` drained this host
  })
  // the supervisor hears it first: by the time anyone sees `ready`, a death is a crash to restart
  const { workerReady, isWorker } = await import('./supervisor.ts')
  workerReady()
  out('ready')
  // systemd (Type=notify) hears it from its main process: this one unless it is a supervised worker
  if (!isWorker()) {
    const { notifyReady } = await import('./notify.ts')
    void notifyReady(readyStatus(settings))
  }
  // a host told to join that reaches nobody says so, and again when a member answers
  if (daemon.join.length > 0 && daemon.host.peers().length === 0) {
    report(`no peer reachable yet: retrying ${daemon.join.join(', ')} with backoff`)
    const joined = (e: CustomEvent<string>): void => {
      daemon.host.removeEventListener('peer:connect', joined)
      report(`joined the network (first peer ${e.detail})`)
    }
    daemon.host.addEventListener('peer:connect', joined)
  }
  await stopped
  while (closers.length > 0) await closers.pop()!().catch((err: any) => { report(`while stopping: ${String(err.message)}`, 'error') })
  out('stopped')
  return 0
}

/** Exit status of a command cancelled with Ctrl-C (128 + SIGINT), as a shell reports it. */
export const EXIT_INTERRUPTED = 130

/** Exit status of a writer whose reader went away (128 + SIGPIPE), as `cat big | head` gives. */
export const EXIT_BROKEN_PIPE = 141

async function main (): Promise<void> {
  // a reader that closed the pipe early (`darkfs cat big | head`) is no error of ours: stop
  // quietly, as a shell tool killed by SIGPIPE does (Node ignores SIGPIPE and reports EPIPE)
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE)
      throw err
    })
  }
  let code: number
  try {
    code = await run(process.argv.slice(2))
  } catch (err: any) {
    if (err?.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE) // the reader went away (see above)
    // reported: the user sees the error's first line on stderr, and the exit code
    const msg = String(err?.message ?? err).split('\n')[0]
    if (jsonErrors) process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', namespace: 'darkfs:cli', msg }) + '\n')
    else process.stderr.write(`darkfs: ${msg}\n`)
    code = err instanceof UsageError ? 2 : 1
  }
  process.exitCode = code
  if (process.argv[2] !== 'up') return
  // `up` has closed everything it opened; do not let a stray timer keep the process alive
  setTimeout(() => process.exit(code), 2000).unref()
}

if (import.meta.main === true || process.argv[1]?.endsWith('cli.ts') === true) {
  await main()
}
