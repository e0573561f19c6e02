// The data dir: where a host keeps its identity, network key, blocks, op log and control socket,
// and its config file, `<data>/config.json`: one key per `darkfs up` flag, named as the flag
// (`"mount": "/mnt/darkfs"`, `"max-upload": "10mbit"`, `"allow-from": ["10.0.0.0/8"]`,
// `"no-restart": true`), read by `up`; a flag given on the command line wins over its key.
// Repeatable flags take a list of strings, flags with a value a string (a number is accepted
// for numeric values: `"redundancy": 3`), switches true or false. `listen` is used when no
// --listen is given; `join` keeps every member address given or learnt (--join adds to it).
// `invite` and `init-if-needed` have no key: they make the data dir the file lives in. An
// unknown key or a value of the wrong type is refused with one line naming the key.
import { access, mkdir, copyFile, readFile, writeFile, rename, open } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { NotInitialisedError, UsageError } from '../errors.ts'
import { COMMANDS } from './args.ts'
import type { Parsed } from './args.ts'

export const NETWORK_KEY_FILE = 'network.key'
export const CONFIG_FILE = 'config.json'
export const DEFAULT_PORT = 4001

/** A value of config.json: a list (repeatable flags), a string or number (flags with a value), a boolean (switches). */
export type ConfigValue = string[] | string | number | boolean

export interface Config {
  listen: string[]
  /** Addresses of members seen before, redialled at start. */
  join: string[]
  /** The other `up` flags set in the file, by flag name (as written: saveConfig keeps them). */
  [flag: string]: ConfigValue
}

/** `up` flags that have no config key: they act before the data dir (and its file) exist. */
export const FLAG_ONLY = new Set(['invite', 'init-if-needed'])

/** The config keys: every `up` flag but FLAG_ONLY. */
export function configKeys (): string[] {
  return Object.keys(COMMANDS.up.options).filter(k => !FLAG_ONLY.has(k))
}

/** Checks one key of the file; UsageError naming it when it is unknown or of the wrong type. */
function checkKey (file: string, key: string, v: unknown): ConfigValue {
  const o = Object.hasOwn(COMMANDS.up.options, key) ? COMMANDS.up.options[key] : undefined
  if (o === undefined || FLAG_ONLY.has(key)) {
    const why = FLAG_ONLY.has(key) ? `--${key} is a command-line flag only` : `keys are the flags of darkfs up: ${configKeys().join(', ')}`
    throw new UsageError(`${file}: unknown key ${JSON.stringify(key)} (${why})`)
  }
  const got = Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `a ${typeof v}`
  if (o.type === 'boolean') {
    if (typeof v !== 'boolean') throw new UsageError(`${file}: key ${JSON.stringify(key)} takes true or false, got ${got}`)
    return v
  }
  if (o.repeat === true) {
    if (!Array.isArray(v) || !v.every(x => typeof x === 'string')) throw new UsageError(`${file}: key ${JSON.stringify(key)} takes a list of strings, got ${Array.isArray(v) ? 'a list with a non-string' : got}`)
    return v
  }
  if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) throw new UsageError(`${file}: key ${JSON.stringify(key)} takes a string${o.value !== undefined ? ` (${o.value})` : ''}, got ${got}`)
  return v
}

/**
 * `p` with the config's values for the `up` flags not given on the command line (flags win).
 * `listen` and `join` are left to the daemon, which reads them from the file itself.
 */
export function withConfig (p: Parsed, config: Config): Parsed & { fromFile: Set<string> } {
  const values = { ...p.values }
  const fromFile = new Set<string>()
  for (const [key, v] of Object.entries(config)) {
    if (key === 'listen' || key === 'join' || values[key] !== undefined) continue
    values[key] = typeof v === 'boolean' ? v : Array.isArray(v) ? [...v] : [String(v)]
    fromFile.add(key)
  }
  return { ...p, values, fromFile }
}

/**
 * A value's error (`--redundancy takes ...`) names the config key when the value came from the
 * file, not the command line.
 */
export function blameFile (err: unknown, dir: string, fromFile: Set<string> | undefined): unknown {
  const key = err instanceof UsageError ? /^--([a-z-]+)/.exec(err.message)?.[1] : undefined
  if (key === undefined || fromFile?.has(key) !== true) return err
  return new UsageError(`${join(dir, CONFIG_FILE)}: key ${JSON.stringify(key)}: ${err instanceof Error ? err.message : String(err)}`)
}

/** --data, then $DARKFS_DATA, then ~/.local/share/darkfs. */
export function dataDir (flag?: string): string {
  return resolve(flag ?? process.env.DARKFS_DATA ?? join(homedir(), '.local', 'share', 'darkfs'))
}

export async function isInitialised (dir: string): Promise<boolean> {
  try {
    await access(join(dir, NETWORK_KEY_FILE))
    await access(join(dir, CONFIG_FILE))
    return true
  } catch { return false } // a missing (or unreadable) key or config: not initialised
}

/** `darkfs init`: identity, network key (new or given), config. Refuses to overwrite a network. */
export async function init (dir: string, opts: { newNetwork?: boolean, networkKey?: string, invite?: string }): Promise<{ peerId: string, keyFile: string, join: string[] }> {
  if ([opts.newNetwork === true, opts.networkKey !== undefined, opts.invite !== undefined].filter(x => x).length !== 1) {
    throw new UsageError('init needs exactly one of --new-network, --network-key FILE or --invite STRING')
  }
  if (await isInitialised(dir)) throw new UsageError(`${dir} is already initialised (it has a network key); use another --data dir`)
  // keys need libp2p's crypto: loaded here, not by every command that reads the config
  const { createNetworkKey, loadOrCreateIdentity, readNetworkKey, writeNetworkKey, decodeInvite } = await import('../net/index.ts')
  let key: Uint8Array
  let joinAddrs: string[] = []
  // every key is validated before anything is written
  if (opts.networkKey !== undefined) {
    key = await readNetworkKey(opts.networkKey)
  } else if (opts.invite !== undefined) {
    const invite = decodeInvite(opts.invite)
    key = invite.networkKey
    joinAddrs = invite.addresses
  } else {
    key = createNetworkKey()
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const identity = await loadOrCreateIdentity(dir)
  const keyFile = join(dir, NETWORK_KEY_FILE)
  if (opts.networkKey !== undefined) await copyFile(opts.networkKey, keyFile)
  else await writeNetworkKey(keyFile, key)
  await saveConfig(dir, { listen: [`/ip4/0.0.0.0/tcp/${DEFAULT_PORT}`], join: joinAddrs })
  // the bearer token of `darkfs up --api` (mode 0600)
  const { apiToken } = await import('../api/index.ts')
  await apiToken(dir)
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  return { peerId: peerIdFromPrivateKey(identity).toString(), keyFile, join: joinAddrs }
}

export async function loadConfig (dir: string): Promise<Config> {
  if (!(await isInitialised(dir))) throw new NotInitialisedError(dir)
  const text = await readFile(join(dir, CONFIG_FILE), 'utf8')
  const file = join(dir, CONFIG_FILE)
  let c: any
  try { c = JSON.parse(text) } catch (err: any) { throw new UsageError(`${file} is not valid JSON (${String(err?.message ?? err)})`) }
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new UsageError(`${file} must hold a JSON object of darkfs up flags ({"mount": "/mnt/darkfs", ...})`)
  const config: Config = { listen: [], join: [] }
  for (const [key, v] of Object.entries(c)) config[key] = checkKey(file, key, v)
  return config
}

export async function saveConfig (dir: string, config: Config): Promise<void> {
  const file = join(dir, CONFIG_FILE)
  const tmp = `${file}.tmp`
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n')
  const fh = await open(tmp, 'r')
  try { await fh.sync() } finally { await fh.close() }
  await rename(tmp, file)
}
