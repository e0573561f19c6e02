// Loads a corrected copy of xsalsa20 (@libp2p/pnet's stream cipher) before libp2p does: import
// this first. xsalsa20 0.x keeps ONE WebAssembly memory (10 pages, at most 1000 = 62.5 MiB) for
// every cipher in the process, and each cipher keeps its own view of it. When one cipher grows
// the memory (an input above ~640 KiB: yamux batches frames under load), every other cipher's
// view is detached (length 0), so its next update "grows" the memory again by its whole input,
// which detaches the first one's view, and so on: two connections taking turns with such inputs
// exhaust the 1000 pages after ~30 MiB and the process dies (RangeError: Maximum memory size
// exceeded). Twenty hosts in one process hit it within a minute of writing. Here a view is
// renewed when the memory moved, and the memory grows only by what is missing.
//
// It must run before anything imports @libp2p/pnet (node/net/host.ts): the module it puts into
// require's cache is the one pnet's `import xsalsa20 from 'xsalsa20'` then gets. Node loads the
// CommonJS modules of an entry's static import graph before it runs any of them, so an entry
// that imports libp2p statically loads this with `node --import ./scripts/bench/_xsalsa20.ts`
// (package.json bench:scale); an entry that imports its benches dynamically (index.ts) may import
// it first. Loaded too late it corrects nothing: `applied` says whether it took effect.
import { readFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import { dirname } from 'node:path'

const require = createRequire(import.meta.resolve('@libp2p/pnet'))
const path = require.resolve('xsalsa20')
const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache
/** Whether the corrected copy is the one libp2p uses (false: xsalsa20 was loaded before this). */
export const applied = cache[path] === undefined
if (applied) install()

function install (): void {
  const original = readFileSync(path, 'utf8')
  const fixes: Array<[string, string]> = [
    ['xsalsa20.memory.grow(Math.ceil(Math.abs(size - this._memory.length) / 65536))',
      'if (size >= xsalsa20.memory.buffer.byteLength) xsalsa20.memory.grow(Math.ceil((size + 1 - xsalsa20.memory.buffer.byteLength) / 65536))'],
    ['  if (top >= this._memory.length) this.realloc(top)',
      '  if (this._memory.buffer !== xsalsa20.memory.buffer) this._memory = new Uint8Array(xsalsa20.memory.buffer)\n  if (top >= this._memory.length) this.realloc(top)'],
    ['WASM.prototype.finalize = function () {\n',
      'WASM.prototype.finalize = function () {\n  if (this._memory.buffer !== xsalsa20.memory.buffer) this._memory = new Uint8Array(xsalsa20.memory.buffer)\n']
  ]
  let source = original
  for (const [from, to] of fixes) {
    if (!source.includes(from)) throw new Error(`scripts/bench/_xsalsa20.ts: xsalsa20 at ${path} is not the version this fixes (no "${from.trim()}")`)
    source = source.replace(from, to)
  }
  const M = Module as unknown as { new (id: string, parent: null): { filename: string, paths: string[], loaded: boolean, _compile: (src: string, file: string) => void }, _nodeModulePaths: (dir: string) => string[] }
  const mod = new M(path, null)
  mod.filename = path
  mod.paths = M._nodeModulePaths(dirname(path))
  mod._compile(source, path)
  mod.loaded = true
  cache[path] = mod
}
