// The data dir: where a host keeps its identity, network key, blocks, op log and control socket.
import { access, mkdir, copyFile, readFile, writeFile, rename, open } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { NotInitialisedError, UsageError } from '../errors.ts'

export const NETWORK_KEY_FILE = 'network.key'
export const CONFIG_FILE = 'config.json'
export const DEFAULT_PORT = 4001

export interface Config {
  listen: string[]
  /** Addresses of members seen before, redialled at start. */
  join: string[]
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
export async function init (dir: string, opts: { newNetwork?: boolean, networkKey?: string }): Promise<{ peerId: string, keyFile: string }> {
  if ((opts.newNetwork === true) === (opts.networkKey !== undefined)) {
    throw new UsageError('init needs exactly one of --new-network or --network-key FILE')
  }
  if (await isInitialised(dir)) throw new UsageError(`${dir} is already initialised (it has a network key); use another --data dir`)
  // keys need libp2p's crypto: loaded here, not by every command that reads the config
  const { createNetworkKey, loadOrCreateIdentity, readNetworkKey, writeNetworkKey } = await import('../net/index.ts')
  let key: Uint8Array
  if (opts.networkKey !== undefined) {
    key = await readNetworkKey(opts.networkKey) // validates before anything is written
  } else {
    key = createNetworkKey()
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const identity = await loadOrCreateIdentity(dir)
  const keyFile = join(dir, NETWORK_KEY_FILE)
  if (opts.networkKey !== undefined) await copyFile(opts.networkKey, keyFile)
  else await writeNetworkKey(keyFile, key)
  await saveConfig(dir, { listen: [`/ip4/0.0.0.0/tcp/${DEFAULT_PORT}`], join: [] })
  // the bearer token of `darkfs up --api` (mode 0600)
  const { apiToken } = await import('../api/index.ts')
  await apiToken(dir)
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  return { peerId: peerIdFromPrivateKey(identity).toString(), keyFile }
}

export async function loadConfig (dir: string): Promise<Config> {
  if (!(await isInitialised(dir))) throw new NotInitialisedError(dir)
  const text = await readFile(join(dir, CONFIG_FILE), 'utf8')
  let c: any
  try { c = JSON.parse(text) } catch { throw new UsageError(`${join(dir, CONFIG_FILE)} is not valid JSON`) }
  const strings = (x: unknown): string[] => Array.isArray(x) ? x.filter(s => typeof s === 'string') : []
  return { listen: strings(c.listen), join: strings(c.join) }
}

export async function saveConfig (dir: string, config: Config): Promise<void> {
  const file = join(dir, CONFIG_FILE)
  const tmp = `${file}.tmp`
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n')
  const fh = await open(tmp, 'r')
  try { await fh.sync() } finally { await fh.close() }
  await rename(tmp, file)
}
