// A correction to xsalsa20 0.x, the stream cipher of @libp2p/pnet (the network key's layer), applied
// once when the host module loads, before any connection exists.
//
// xsalsa20 keeps ONE WebAssembly memory for every cipher in the process, and each cipher keeps its
// own Uint8Array view of it. When one cipher grows the memory (an input above ~640 KiB: yamux
// batches frames that large under load), every other cipher's view is detached (length 0). The
// next update of such a cipher then "grows" the memory again by its whole input (it computes the
// growth from its dead view), which detaches the first cipher's view, and so on: two connections
// taking turns with large inputs exhaust the memory's 1,000 pages after about 30 MiB and the
// process dies (RangeError: maximum memory size exceeded). Twenty hosts in one process hit it
// within a minute of writing (bench:scale); a daemon with a few busy peers is exposed the same way.
//
// The module's internals are private, but XSalsa20.prototype.update and finalize are looked up on
// each call, so they are wrapped here: before a cipher works, a view of a memory that has grown
// since is renewed from the current buffer (remembered after every update, the only place the
// memory grows), so it grows only by what is missing. Pure JavaScript changes nothing about the
// cipher's output (test/node/xsalsa20.test.ts checks against fresh ciphers).
//
// Speed (issue 15 item 4): every byte between two hosts passes this cipher twice (sealed and
// opened), and the module XORs at ~430 MB/s on a free core (copying each input into its memory
// and the output back out): on six hosts sharing one event loop it was 12-16% of the CPU of a
// sequential write or cold read. When the erasure addon is built (node/data/native: XSalsa20
// four or eight blocks at a time in vectors, straight from input to output), a cipher that has not
// worked yet takes its key and nonce from the module's memory on its first update and runs on
// the addon from then on: the same key stream (checked against the module in
// test/node/xsalsa20.test.ts), several times faster. DARKFS_PNET_CIPHER=wasm keeps the module
// (for comparison).
// the same module @libp2p/pnet imports (one copy in node_modules, and one in a bundle: the
// dependency is pinned to pnet's version in package.json); its default export is module.exports
// @ts-expect-error xsalsa20 ships no types: its shape is XSalsa20Module below
import xsalsa20 from 'xsalsa20'
import { Buffer } from 'node:buffer'
import { xsalsa20Native } from '../data/index.ts'

interface Xor { _memory?: Uint8Array, _pointer?: number, _nonce?: number, _key?: number, _overflow?: number }
/** The addon's state of a cipher that runs on it: its subkey, the nonce's last 8 bytes, the stream position. */
interface NativeState { subkey: Uint8Array, nonce: Uint8Array, position: number }
interface Cipher { _xor: Xor | null, __darkfsNative?: NativeState | null }
interface XSalsa20Module { prototype: { update: (this: Cipher, input: Uint8Array, output?: Uint8Array) => Uint8Array, finalize: (this: Cipher) => void, final: (this: Cipher) => void, __darkfsRenewed?: true } }

/** The xsalsa20 module @libp2p/pnet uses. */
export function pnetXsalsa20 (): XSalsa20Module {
  return xsalsa20 as unknown as XSalsa20Module
}

/** Wrap xsalsa20's update and finalize so that no cipher works through a view of a memory that has grown since (idempotent). */
export function renewXsalsa20Views (mod: XSalsa20Module = pnetXsalsa20()): void {
  const proto = mod.prototype
  if (proto.__darkfsRenewed === true) return
  const update = proto.update
  const finalize = proto.finalize
  /** The WebAssembly memory's buffer after the last update (the memory grows only in updates). */
  let latest: ArrayBufferLike | undefined
  const renew = (x: Xor | null): void => {
    if (x?._memory !== undefined && latest !== undefined && x._memory.buffer !== latest) x._memory = new Uint8Array(latest)
  }
  const nativeCipher = process.env.DARKFS_PNET_CIPHER === 'wasm' ? undefined : xsalsa20Native
  /** The cipher's state on the addon, taken over before its first byte; null: it stays on the module. */
  const takeOver = (c: Cipher): NativeState | null => {
    const x = c._xor
    if (nativeCipher === undefined || x === null) return null
    renew(x)
    const mem = x._memory
    if (mem === undefined || x._pointer === undefined || x._nonce === undefined || x._key === undefined || x._overflow !== 0) return null
    // the module's block counter (8 bytes at _pointer) is still 0: nothing was XORed yet
    for (let i = 0; i < 8; i++) if (mem[x._pointer + i] !== 0) return null
    const nonce = mem.slice(x._nonce, x._nonce + 24)
    const key = mem.slice(x._key, x._key + 32)
    const subkey = nativeCipher.hsalsa20(key, nonce.subarray(0, 16))
    key.fill(0)
    return { subkey, nonce: nonce.slice(16), position: 0 }
  }
  proto.update = function (input, output) {
    let n = this.__darkfsNative
    if (n === undefined && input !== undefined && input !== null) n = this.__darkfsNative = takeOver(this)
    if (n !== undefined && n !== null && nativeCipher !== undefined) {
      // not zero-filled first: xor writes every byte of it (its own memory, not a pooled slab's)
      const out = output ?? Buffer.allocUnsafeSlow(input.byteLength)
      nativeCipher.xor(n.subkey, n.nonce, n.position, input, out)
      n.position += input.byteLength
      return out
    }
    const x = this._xor
    // finalized (its connection closed, releasePnetCiphers): nothing more to XOR. Bytes a closed
    // connection still hands over (a paused socket's leftovers) go nowhere: none is decrypted,
    // and none is encrypted for a socket that takes no more
    if (x === null) return new Uint8Array(0)
    renew(x)
    const out = update.call(this, input, output)
    if (x?._memory !== undefined) latest = x._memory.buffer
    return out
  }
  // `final` is the same function under another name
  proto.final = proto.finalize = function () {
    const n = this.__darkfsNative
    if (n !== undefined && n !== null) n.subkey.fill(0)
    this.__darkfsNative = null
    // once only (the module's own finalize throws the second time)
    if (this._xor === null) return
    // its key is wiped through the view: a live one (and its slot freed)
    renew(this._xor)
    finalize.call(this)
  }
  proto.__darkfsRenewed = true
}

/** A pnet connection's parts releasePnetCiphers uses (@libp2p/pnet 3's BoxMessageStream). */
interface PnetConnection {
  inboundXor?: { finalize?: () => void, _xor?: unknown }
  outboundXor?: { finalize?: () => void, _xor?: unknown }
  maConn?: { status?: string, addEventListener?: (type: 'close', listener: () => void, opts?: { once: boolean }) => void }
}

/**
 * Finalize a pnet connection's two ciphers once its socket has closed, so their slots in the
 * module's memory are free for the next connection's. Every cipher takes a 64-byte slot (its
 * counter, nonce and key) that only finalize() gives back, and @libp2p/pnet 3 never calls it: with
 * the ciphers on the addon the memory never grows past its first 10 pages, so the process's
 * 10,238th cipher found no room (RangeError: offset is out of bounds, in the cipher's
 * constructor) and from then on every connection, either way, failed its private-network
 * handshake. That is 5,118 connections over a daemon's life (two ciphers at each end), and
 * 2,559 among hosts in one process (bench:scale at 30 hosts: after about 2,900 dials, every
 * swarm dial refused on every host at once, 1,338 inbound and 1,309 outbound nonce exchanges
 * failing with that RangeError in 30 s, while libp2p refused none and had none pending). A
 * connection of another shape is left as it is; one already closed is finalized at once.
 */
export function releasePnetCiphers (conn: unknown): void {
  const c = conn as PnetConnection | null | undefined
  const socket = c?.maConn
  if (c === null || c === undefined || socket === undefined || typeof socket.addEventListener !== 'function') return
  const release = (): void => {
    for (const x of [c.inboundXor, c.outboundXor]) if (x !== undefined && x._xor != null && typeof x.finalize === 'function') x.finalize()
  }
  if (socket.status === 'closed' || socket.status === 'aborted' || socket.status === 'reset') release()
  else socket.addEventListener('close', release, { once: true })
}
