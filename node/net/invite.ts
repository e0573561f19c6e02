// Invites (issue 13): one copy-paste string that lets a new host join a network. It carries the
// network key, the addresses of members that were live when it was made, and when it expires:
//
//   darkfs-invite1:<base64url of the bytes below>
//
//   32 bytes      the network key (the secret: whoever holds the invite can join)
//   4 bytes       expiry, seconds since the Unix epoch, big-endian
//   1 byte        n, the number of addresses (at most MAX_INVITE_ADDRESSES)
//   n times       1 byte length, then the multiaddr's binary form (with its /p2p/ peer id)
//   4 bytes       checksum: the first 4 bytes of SHA-256 over the prefix and everything above
//
// A mangled string (a character changed, cut short, joined with another) fails the checksum and
// is refused with one line, as is an expired one (with the time it expired). Whitespace inside
// the string is ignored: a terminal or a mail client may wrap it.
import { createHash } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { UsageError } from '../errors.ts'
import { NETWORK_KEY_BYTES } from './keys.ts'

export const INVITE_PREFIX = 'darkfs-invite1:'
/** Most member addresses an invite carries (the string stays short enough to paste). */
export const MAX_INVITE_ADDRESSES = 8
/** Longest an invite may be valid: 365 days. */
export const MAX_INVITE_VALID_MS = 365 * 24 * 3600_000
/** Default validity of `darkfs invite`. */
export const DEFAULT_INVITE_VALID = '24h'

const CHECKSUM_BYTES = 4

export interface Invite {
  networkKey: Uint8Array
  /** Multiaddrs of members, each with its /p2p/ peer id. */
  addresses: string[]
  /** When it stops being accepted, ms since the epoch (whole seconds). */
  expiresAt: number
}

/** An invite string that is not one, or was damaged on the way (one line, says which; a UsageError on the wire). */
export class BadInviteError extends UsageError {
  constructor (detail: string) {
    super(`not a usable darkfs invite: ${detail}`)
  }
}

/** An invite past its expiry. */
export class InviteExpiredError extends UsageError {
  readonly expiresAt: number
  constructor (expiresAt: number) {
    super(`this invite expired at ${new Date(expiresAt).toISOString()}; ask a member for a new one (darkfs invite)`)
    this.expiresAt = expiresAt
  }
}

function checksum (payload: Uint8Array): Uint8Array {
  return createHash('sha256').update(INVITE_PREFIX).update(payload).digest().subarray(0, CHECKSUM_BYTES)
}

/** The invite string. Throws UsageError for a key of the wrong size or no address that fits. */
export function encodeInvite (invite: Invite): string {
  if (invite.networkKey.byteLength !== NETWORK_KEY_BYTES) throw new UsageError(`a network key has ${NETWORK_KEY_BYTES} bytes, got ${invite.networkKey.byteLength}`)
  const addrs = invite.addresses.slice(0, MAX_INVITE_ADDRESSES).map(a => multiaddr(a).bytes).filter(b => b.byteLength <= 255)
  const parts: Uint8Array[] = [invite.networkKey]
  const head = new Uint8Array(5)
  new DataView(head.buffer).setUint32(0, Math.floor(invite.expiresAt / 1000))
  head[4] = addrs.length
  parts.push(head)
  for (const a of addrs) parts.push(Uint8Array.of(a.byteLength), a)
  const payload = Buffer.concat(parts)
  return INVITE_PREFIX + Buffer.concat([payload, checksum(payload)]).toString('base64url')
}

/**
 * The invite in `text`: BadInviteError when it is not an invite or was damaged (checksum),
 * InviteExpiredError when it expired before `now`.
 */
export function decodeInvite (text: string, now = Date.now()): Invite {
  const invite = readInvite(text)
  if (invite.expiresAt <= now) throw new InviteExpiredError(invite.expiresAt)
  return invite
}

/**
 * The invite in `text` whether it expired or not (BadInviteError when it is not one): for a
 * host already in the network, whose `up --invite` only checks the invite is of its network.
 */
export function readInvite (text: string): Invite {
  const s = text.replace(/\s+/g, '')
  if (!s.startsWith(INVITE_PREFIX)) {
    const version = /^darkfs-invite(\d+):/.exec(s)?.[1]
    if (version !== undefined) throw new BadInviteError(`it is of invite format ${version}; this darkfs reads format 1 (upgrade darkfs)`)
    throw new BadInviteError(`it does not start with ${INVITE_PREFIX}`)
  }
  const body = s.slice(INVITE_PREFIX.length)
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new BadInviteError('it has characters an invite never has (copy it again, whole)')
  const bytes = new Uint8Array(Buffer.from(body, 'base64url'))
  const damaged = new BadInviteError('it is damaged or incomplete (its checksum does not match); copy it again, whole')
  // base64url that is not what the bytes encode to (a character added at the end, or a last
  // character changed only in its unused bits) is damage the checksum cannot see
  if (Buffer.from(bytes).toString('base64url') !== body) throw damaged
  if (bytes.byteLength < NETWORK_KEY_BYTES + 5 + CHECKSUM_BYTES) throw damaged
  const payload = bytes.subarray(0, bytes.byteLength - CHECKSUM_BYTES)
  if (!Buffer.from(checksum(payload)).equals(bytes.subarray(payload.byteLength))) throw damaged
  const networkKey = payload.slice(0, NETWORK_KEY_BYTES)
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const expiresAt = view.getUint32(NETWORK_KEY_BYTES) * 1000
  const n = payload[NETWORK_KEY_BYTES + 4]
  const addresses: string[] = []
  let at = NETWORK_KEY_BYTES + 5
  for (let i = 0; i < n; i++) {
    const len = payload[at]
    if (len === undefined || at + 1 + len > payload.byteLength) throw damaged
    try {
      addresses.push(multiaddr(payload.slice(at + 1, at + 1 + len)).toString())
    } catch {
      throw damaged // the checksum matched, but the bytes are no multiaddr: not made by darkfs invite
    }
    at += 1 + len
  }
  if (at !== payload.byteLength) throw damaged
  return { networkKey, addresses, expiresAt }
}

/** `--expires` / `{expires}`: `90s`, `30m`, `24h`, `7d` (or ms as a number) -> ms; UsageError otherwise. */
export function parseInviteValidity (v: string | number | undefined): number {
  if (v === undefined) v = DEFAULT_INVITE_VALID
  let ms: number
  if (typeof v === 'number') ms = v
  else {
    const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(v.trim())
    if (m === null) throw new UsageError(`--expires takes a duration such as 90s, 30m, 24h or 7d, got ${JSON.stringify(v)}`)
    ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  }
  if (!Number.isFinite(ms) || ms < 1000 || ms > MAX_INVITE_VALID_MS) throw new UsageError(`--expires must be between 1s and 365d, got ${JSON.stringify(v)}`)
  return ms
}

/** 127/8 and ::1: left out of an invite unless nothing else exists (a test on loopback). */
function isLoopback (addr: string): boolean {
  return /^\/ip4\/127\./.test(addr) || /^\/ip6\/::1\//.test(addr) || /^\/dns[46]?\/localhost\//.test(addr)
}

/**
 * The addresses an invite carries: this host's own and those of the peers it is connected to
 * (live members: a new host reaches at least one of them), each with its /p2p/ id, once each,
 * at most MAX_INVITE_ADDRESSES taken round the hosts (every host's first address, then every
 * host's second, ...) so one host with many addresses does not crowd the others out; loopback
 * addresses only when there is nothing else (a network on one machine, as in the tests).
 */
export function inviteAddresses (own: string[], peers: Array<{ id: string, addresses: string[] }>): string[] {
  const withId = (a: string, id?: string): string => a.includes('/p2p/') || id === undefined ? a : `${a}/p2p/${id}`
  const hosts = [own.map(a => withId(a)), ...peers.map(p => p.addresses.map(a => withId(a, p.id)))]
    .map(list => list.filter(a => a.includes('/p2p/') && !a.includes('/p2p-circuit')))
  const anyRoutable = hosts.some(list => list.some(a => !isLoopback(a)))
  const usable = hosts.map(list => anyRoutable ? list.filter(a => !isLoopback(a)) : list)
  const out = new Set<string>()
  for (let i = 0; out.size < MAX_INVITE_ADDRESSES && usable.some(list => i < list.length); i++) {
    for (const list of usable) if (i < list.length && out.size < MAX_INVITE_ADDRESSES) out.add(list[i])
  }
  return [...out]
}
