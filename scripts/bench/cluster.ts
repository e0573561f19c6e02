// Five hosts on loopback TCP (pnet, noise, yamux, kad-dht, swarm), in one process: put of a
// large file on one host (waiting until placement is safe) and cold get on another.
// DARKFS_BENCH_MIB sets the size (default 256).
import { MiB, randomPieces, readThrough } from './_stream.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'

const HOSTS = 5

export async function run (): Promise<Record<string, number>> {
  const size = Number(process.env.DARKFS_BENCH_MIB ?? 256)
  const t = new Teardown()
  try {
    const hosts = await startCluster(t, HOSTS, { transport: 'tcp' })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === HOSTS - 1), 30_000)
    const writer = hosts[0]
    const sentBefore = writer.swarm.stats().bytesSent
    const storedBefore = writer.store.counters().net
    writer.store.markPeak()
    let t0 = performance.now()
    await writer.volume.replaceFile('/big.bin', randomPieces(size), { wait: 'safe' })
    const putS = (performance.now() - t0) / 1000
    const sent = writer.swarm.stats().bytesSent - sentBefore
    // the writer's disk during the put: its peak store growth, against the file's size (issue 17
    // item 8: placement streams within a bounded window, the writer keeps its own share)
    const peakStored = writer.store.counters().peak - storedBefore
    const reader = hosts[3]
    await until('the reader sees the file', async () => { try { await reader.volume.stat('/big.bin'); return true } catch { return false } }, 30_000)
    reader.volume.chunks.dropCache()
    t0 = performance.now()
    const pos = await readThrough(reader.volume, '/big.bin')
    const getS = (performance.now() - t0) / 1000
    if (pos !== size * MiB) throw new Error(`read ${pos} of ${size * MiB} bytes`)
    const { k, m } = writer.volume.chunks.params()
    return {
      'cluster5.put.MiB': size,
      'cluster5.k': k,
      'cluster5.m': m,
      'cluster5.put.MiBps': size / putS,
      'cluster5.get.cold.MiBps': size / getS,
      'cluster5.writer.uploadPerByteWritten': sent / (size * MiB),
      'cluster5.writer.peakStoredPerByteWritten': peakStored / (size * MiB)
    }
  } finally {
    await t.run()
  }
}
