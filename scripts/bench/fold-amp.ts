// Write amplification of folds (issue 15 item 2): random 4 KiB pwrites, each fsynced, over one
// large file (default 256 MiB: DARKFS_BENCH_FOLD_MIB; DARKFS_BENCH_FOLD_WRITES writes, default
// 8192) on one host (a library Volume on a real data dir). Figures: bytes written new to the
// block store (Store.counters().added: chunks, manifests, parity) per byte the app wrote, while
// the writes run (folds due on the way) and once the file is quiet and folded whole; bytes the
// op log grew by, per byte written (the extents' ops, inline ones hold their bytes); how many
// extents a read of the file merges at the end of the writes. Whole-chunk folds rewrote every
// chunk their extents touched: ~1 MiB per scattered 4 KiB page.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Volume } from '../../node/index.ts'
import type { Store } from '../../node/data/index.ts'
import { MiB, randomPieces } from './_stream.ts'

const PAGE = 4096

/** Bytes of the files under `dir`, recursively, skipping the block store (`blocks`). */
async function bytesUnder (dir: string, skip: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) { if (e.name !== skip) n += await bytesUnder(p, skip) } else if (e.isFile()) n += (await stat(p)).size
  }
  return n
}

/** xorshift32: the same pages on every run. */
function rng (seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return n => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n }
}

export async function run (): Promise<Record<string, number>> {
  const mib = Number(process.env.DARKFS_BENCH_FOLD_MIB ?? 256)
  const writes = Number(process.env.DARKFS_BENCH_FOLD_WRITES ?? 8192)
  const dir = await mkdtemp(join(tmpdir(), 'darkfs-bench-fold-'))
  try {
    const vol = await Volume.open({ dir })
    const store = (vol as unknown as { store: Store }).store
    await vol.replaceFile('/db', randomPieces(mib))
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const stored0 = store.counters().added
    const other0 = await bytesUnder(dir, 'blocks')
    const next = rng(7)
    const page = new Uint8Array(PAGE)
    const fh = await vol.open('/db', 'r+')
    let maxExtents = 0
    const t = performance.now()
    for (let i = 0; i < writes; i++) {
      page.fill(i & 0xff)
      await fh.write(page, 0, PAGE, next(mib * MiB / PAGE) * PAGE)
      await fh.sync()
      maxExtents = Math.max(maxExtents, vol.tree.get(id)?.extents?.length ?? 0)
    }
    const writeS = (performance.now() - t) / 1000
    const written = writes * PAGE
    const during = store.counters().added - stored0
    const extentsEnd = vol.tree.get(id)?.extents?.length ?? 0
    await fh.close()
    // quiet: the file's last extents folded (FOLD_QUIET_MS after the last write)
    const deadline = Date.now() + 120_000
    while ((vol.tree.get(id)?.extents?.length ?? 0) > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 250))
    const quiet = store.counters().added - stored0
    const log = await bytesUnder(dir, 'blocks') - other0
    await vol.close()
    const key = `fold.${mib}MiB.${writes}x4KiB`
    return {
      [`${key}.store-bytes-per-byte.writing`]: during / written,
      [`${key}.store-bytes-per-byte.quiet`]: quiet / written,
      [`${key}.other-bytes-per-byte`]: log / written,
      [`${key}.extents.max`]: maxExtents,
      [`${key}.extents.end`]: extentsEnd,
      [`${key}.fsyncs-per-s`]: writes / writeS
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
