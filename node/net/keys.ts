// Identity and network key files (DESIGN.md §7).
//  - <data>/identity.key: the host's Ed25519 private key, libp2p protobuf bytes, mode 0600.
//  - the network key (swarm.key): a 32-byte pre-shared key in the libp2p pnet text format
//      /key/swarm/psk/1.0.0/
//      /base16/
//      <64 hex chars>
//    Every host of one darkfs network holds the same key; a host without it cannot connect.
// In memory the network key is the 32 raw key bytes; `networkKeyFile` gives the text form.
import { randomBytes } from 'node:crypto'
import { chmod, link, mkdir, open, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

/** Bytes of a network pre-shared key (pnet uses XSalsa20 with a 256-bit key). */
export const NETWORK_KEY_BYTES = 32
/** Name of the identity file inside a data dir. */
export const IDENTITY_FILE = 'identity.key'
/** Largest identity or network key file read (both are tiny; anything bigger is not ours). */
export const MAX_KEY_FILE_BYTES = 4096

const PSK_TAG = '/key/swarm/psk/1.0.0/'
const PSK_CODEC = '/base16/'

/** A network key file that is not in the pnet swarm.key format. */
export class BadNetworkKeyError extends Error {
  static override readonly name = 'BadNetworkKeyError'
  override readonly name = 'BadNetworkKeyError'
  readonly path?: string
  constructor (detail: string, path?: string) {
    super(`${path !== undefined ? `${path}: ` : ''}not a darkfs network key (${detail}); expected the libp2p swarm.key format: '${PSK_TAG}', '${PSK_CODEC}', then ${NETWORK_KEY_BYTES * 2} hex characters`)
    this.path = path
  }
}

/** An identity file that does not hold a libp2p private key. */
export class BadIdentityError extends Error {
  static override readonly name = 'BadIdentityError'
  override readonly name = 'BadIdentityError'
  readonly path: string
  constructor (path: string, detail: string) {
    super(`${path}: not a darkfs identity key (${detail}); it is left untouched`)
    this.path = path
  }
}

/**
 * The host identity stored in `<dataDir>/identity.key`, created (Ed25519, mode 0600) when
 * missing. A file that exists but does not parse is an error, never overwritten.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readBounded(file)
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err: any) {
      throw new BadIdentityError(file, err?.message ?? String(err))
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeExclusive(file, privateKeyToProtobuf(key))
  // a concurrent creator may have won the race: the file on disk is the identity
  return privateKeyFromProtobuf(await readBounded(file))
}

/** A new random network key (32 bytes). */
export function createNetworkKey (): Uint8Array {
  return new Uint8Array(randomBytes(NETWORK_KEY_BYTES))
}

/** The pnet swarm.key text of a network key. */
export function formatNetworkKey (key: Uint8Array): string {
  checkKeyLength(key)
  return `${PSK_TAG}\n${PSK_CODEC}\n${Buffer.from(key).toString('hex')}\n`
}

/** The network key in a swarm.key text; BadNetworkKeyError when malformed. */
export function parseNetworkKey (text: string, path?: string): Uint8Array {
  const lines = text.split(/\r\n|\r|\n/).map(l => l.trim())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  if (lines.length !== 3) throw new BadNetworkKeyError(`${lines.length} lines, expected 3`, path)
  if (lines[0] !== PSK_TAG) throw new BadNetworkKeyError(`first line is not ${PSK_TAG}`, path)
  if (lines[1] !== PSK_CODEC) throw new BadNetworkKeyError(`second line is not ${PSK_CODEC} (only base16 keys are supported)`, path)
  if (!/^[0-9a-fA-F]*$/.test(lines[2])) throw new BadNetworkKeyError('the key line has non-hex characters', path)
  if (lines[2].length !== NETWORK_KEY_BYTES * 2) throw new BadNetworkKeyError(`the key has ${lines[2].length} hex characters`, path)
  return new Uint8Array(Buffer.from(lines[2], 'hex'))
}

/** Read a swarm.key file; BadNetworkKeyError when it is malformed. */
export async function readNetworkKey (file: string): Promise<Uint8Array> {
  const bytes = await readBounded(file, (size) => new BadNetworkKeyError(`${size} bytes, too big`, file))
  return parseNetworkKey(Buffer.from(bytes).toString('utf8'), file)
}

/** Write a network key as a swarm.key file (mode 0600), atomically; never overwrites one. */
export async function writeNetworkKey (file: string, key: Uint8Array): Promise<void> {
  const text = formatNetworkKey(key)
  await mkdir(dirname(file), { recursive: true })
  await writeExclusive(file, new TextEncoder().encode(text))
}

function checkKeyLength (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== NETWORK_KEY_BYTES) {
    throw new BadNetworkKeyError(`${key?.byteLength ?? 0} key bytes, expected ${NETWORK_KEY_BYTES}`)
  }
}

async function readBounded (file: string, tooBig?: (size: number) => Error): Promise<Uint8Array> {
  const bytes = await readFile(file)
  if (bytes.byteLength > MAX_KEY_FILE_BYTES) {
    throw tooBig?.(bytes.byteLength) ?? new BadIdentityError(file, `${bytes.byteLength} bytes, too big`)
  }
  return new Uint8Array(bytes)
}

/** Write via a temp file then link(2) into place, mode 0600: atomic, and EEXIST if `file` exists. */
async function writeExclusive (file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
    await fh.close()
    await chmod(tmp, 0o600)
    await link(tmp, file)
  } catch (err: any) {
    // an identity created concurrently by another process is kept (the caller re-reads it)
    if (!(err?.code === 'EEXIST' && file.endsWith(IDENTITY_FILE))) throw err
  } finally {
    // ignored: a close error after a failed write changes nothing; the temp file goes below
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
  }
}
