// The close of a file after random 4 KiB writes without fsync (issue 15: fio randwrite, 4 KiB,
// QD1, no fsync), at volume level (no FUSE): one host, a library Volume on a real data dir, one
// file of DARKFS_BENCH_CLOSE_MIB MiB (default 256; the figure is at 1024) written whole
// first, then distinct random pages written through one handle (as fio's random map does),
// DARKFS_BENCH_CLOSE_SHARE of the file's pages (default 0.45: fio's 30 s run at ~3,900 IOPS over
// 1 GiB), then closed. Figures: write IOPS, seconds the close takes (its commit: buildSparse's
// extents, or a rewrite of every patched chunk), bytes the close stored (Store.counters().added),
// the ops it made and their extents, and with DARKFS_BENCH_CLOSE_FOLD=1 the seconds until the
// background folds hold every extent. DARKFS_BENCH_CLOSE_EXTENT_MAX sets the open file's
// commitExtentMax (bytes of patches from which a chunk is rewritten whole at the commit).
// Sampled pages (written and not) are checked against a model before the figures count.
import { mkdtemp, rm } from 'node:fs/promises'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Volume } from '../../node/index.ts'
import type { Store } from '../../node/data/index.ts'
import { onEachOp } from '../../harness/ops.ts'
import { MiB } from './_stream.ts'

const PAGE = 4096

/** xorshift32: the same pages on every run. */
function rng (seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return n => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n }
}

export async function run (): Promise<Record<string, number>> {
  const mib = Number(process.env.DARKFS_BENCH_CLOSE_MIB ?? 256)
  const share = Number(process.env.DARKFS_BENCH_CLOSE_SHARE ?? 0.45)
  const fold = process.env.DARKFS_BENCH_CLOSE_FOLD === '1'
  const dir = await mkdtemp(join(tmpdir(), 'darkfs-bench-close-'))
  try {
    const vol = await Volume.open({ dir })
    const store = (vol as unknown as { store: Store }).store
    const model = new Uint8Array(mib * MiB)
    randomFillSync(model)
    await vol.replaceFile('/rand.bin', (function * () { for (let i = 0; i < mib; i++) yield model.subarray(i * MiB, (i + 1) * MiB) })())
    const id = vol.tree.byIno((await vol.stat('/rand.bin')).ino)!.id
    let ops = 0
    let extents = 0
    let writes = 0
    onEachOp(vol.tree, (op, local) => {
      if (!local || !('inode' in op.body) || op.body.inode !== id) return
      ops++
      if (op.body.type === 'append') extents += 1 + (op.body.more?.length ?? 0)
      if (op.body.type === 'write') writes++
    })
    // distinct random pages, a share of the file's
    const pages = mib * MiB / PAGE
    const order = Array.from({ length: pages }, (_, i) => i)
    const next = rng(42)
    for (let i = pages - 1; i > 0; i--) { const j = next(i + 1); [order[i], order[j]] = [order[j], order[i]] }
    const n = Math.floor(pages * share)
    const fh = await vol.open('/rand.bin', 'r+')
    // DARKFS_BENCH_CLOSE_EXTENT_MAX: the patched bytes from which the commit rewrites a chunk whole
    const extentMax = process.env.DARKFS_BENCH_CLOSE_EXTENT_MAX
    const f = (vol as unknown as { open_: Map<string, { commitExtentMax?: number }> }).open_.get(id)
    if (extentMax !== undefined && f !== undefined) f.commitExtentMax = Number(extentMax)
    const data = new Uint8Array(PAGE)
    let t = performance.now()
    for (let k = 0; k < n; k++) {
      const pos = order[k] * PAGE
      randomFillSync(data)
      await fh.write(data, 0, PAGE, pos)
      model.set(data, pos)
    }
    const writeS = (performance.now() - t) / 1000
    const added = store.counters().added
    t = performance.now()
    await fh.close()
    const closeS = (performance.now() - t) / 1000
    const closeBytes = store.counters().added - added
    // the bytes: pages written and not, sampled
    const r = await vol.open('/rand.bin', 'r')
    const out = new Uint8Array(PAGE)
    for (let k = 0; k < 512; k++) {
      const pos = (k % 2 === 0 ? order[next(n)] : next(pages)) * PAGE + next(PAGE / 2)
      const { bytesRead } = await r.read(out, 0, PAGE, pos)
      if (bytesRead !== Math.min(PAGE, model.byteLength - pos) || !Buffer.from(out.subarray(0, bytesRead)).equals(model.subarray(pos, pos + bytesRead))) throw new Error(`page at ${pos} reads other bytes than written`)
    }
    await r.close()
    const figures: Record<string, number> = {
      'close-random.MiB': mib,
      'close-random.writes': n,
      'close-random.write.iops': n / writeS,
      'close-random.close.s': closeS,
      'close-random.close.storedMiB': closeBytes / MiB,
      'close-random.close.ops': ops,
      'close-random.close.extents': extents,
      'close-random.close.wholeWrites': writes
    }
    if (fold) {
      t = performance.now()
      const deadline = t + 30 * 60_000
      while ((vol.tree.get(id)?.extents?.length ?? 0) > 0) {
        if (performance.now() > deadline) throw new Error('the folds did not hold every extent within 30 min')
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      figures['close-random.folded.s'] = (performance.now() - t) / 1000
    }
    await vol.close()
    return figures
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
