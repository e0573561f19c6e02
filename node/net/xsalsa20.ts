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
// the same module @libp2p/pnet imports (one copy in node_modules, and one in a bundle: the
// dependency is pinned to pnet's version in package.json); its default export is module.exports
// @ts-expect-error xsalsa20 ships no types: its shape is XSalsa20Module below
import xsalsa20 from 'xsalsa20'

interface Xor { _memory?: Uint8Array }
interface Cipher { _xor: Xor | null }
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
  proto.update = function (input, output) {
    const x = this._xor
    renew(x)
    const out = update.call(this, input, output)
    if (x?._memory !== undefined) latest = x._memory.buffer
    return out
  }
  // `final` is the same function under another name
  proto.final = proto.finalize = function () {
    // its key is wiped through the view: a live one
    renew(this._xor)
    finalize.call(this)
  }
  proto.__darkfsRenewed = true
}
