// One host: put and get of a large file through the Volume (default 256 MiB; DARKFS_BENCH_MIB),
// and through the control socket as `darkfs put/get` would, on a real data dir.
import { MiB, randomPieces, readThrough } from './_stream.ts'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Volume } from '../../node/index.ts'


export async function run (): Promise<Record<string, number>> {
  const size = Number(process.env.DARKFS_BENCH_MIB ?? 256)
  const dir = await mkdtemp(join(tmpdir(), 'darkfs-bench-'))
  try {
    const vol = await Volume.open({ dir })
    let t = performance.now()
    await vol.replaceFile('/big.bin', randomPieces(size))
    const putS = (performance.now() - t) / 1000
    vol.chunks.dropCache()
    t = performance.now()
    const pos = await readThrough(vol, '/big.bin')
    const getS = (performance.now() - t) / 1000
    if (pos !== size * MiB) throw new Error(`read ${pos} bytes, wrote ${size * MiB}`)
    // 5,000 small files through the Volume (metadata path: one op each)
    t = performance.now()
    await vol.mkdir('/small')
    const small = new Uint8Array(4096).fill(7)
    for (let i = 0; i < 5000; i++) await vol.writeFile(`/small/f${i}`, small)
    const createS = (performance.now() - t) / 1000
    await vol.close()
    await writeFile(join(dir, 'done'), '')
    return {
      'volume.put.MiB': size,
      'volume.put.MiBps': size / putS,
      'volume.get.cold.MiBps': size / getS,
      'volume.create5000x4KiB.s': createS
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
