// Random 4 KiB reads on another host (issue 15 item 3, verified range reads): a file written on
// one host of a six-host cluster on loopback TCP (in one process, k = 4, m = 2), read by another
// host through an open handle (the FUSE read path without the kernel), 4 KiB at a time at random
// offsets, each in a chunk no read touched before (cold: never served from the chunk cache).
// Measured with range reads (a leaf of one data fragment and its Merkle proof) and without them
// ("whole": ChunkService.readRange replaced by a read of the whole chunk, the path before range
// reads): reads per second one at a time and with READERS reads in flight, and bytes the reading
// host's swarm received per read. Then the same reads on one host alone, of its own file: the
// whole chunk from its store, against pages read alone from disk and checked by the fragments'
// leaf hashes (node/data/leaves.ts), cold and warm. DARKFS_BENCH_RANDOM_MIB sets the file size (default 64: 64
// chunks, read in random order, once per run).
import { randomBytes, randomInt } from 'node:crypto'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { MiB } from './_stream.ts'

const HOSTS = 6
const DEFAULT_MIB = 64
/** Reads in flight at once in the concurrent runs (a FUSE mount issues several). */
const READERS = 8

/** Reads 4 KiB from each chunk once, in random order, `concurrency` at a time: reads/s and bytes received per read. */
async function randomReads (h: ClusterHost, data: Uint8Array, chunks: number, concurrency: number, leafHashes = true): Promise<{ perSecond: number, bytesPerRead: number }> {
  h.volume.chunks.dropCache({ leafHashes })
  const order = Array.from({ length: chunks }, (_, i) => i)
  for (let i = order.length - 1; i > 0; i--) { const j = randomInt(i + 1); [order[i], order[j]] = [order[j], order[i]] }
  const received = h.swarm.stats().bytesReceived
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    // one handle per reader: the readahead of a handle sees only its own reads
    const fh = await h.volume.open('/rand.bin', 'r')
    try {
      const buf = new Uint8Array(4096)
      for (let n = next++; n < order.length; n = next++) {
        const pos = order[n] * MiB + randomInt(MiB - 4096)
        const { bytesRead } = await fh.read(buf, 0, 4096, pos)
        if (bytesRead !== 4096) throw new Error(`read ${bytesRead} bytes at ${pos}`)
        // a figure of wrong bytes is no figure
        if (!Buffer.from(buf).equals(data.subarray(pos, pos + 4096))) throw new Error(`read-random: wrong bytes at ${pos}`)
      }
    } finally {
      await fh.close()
    }
  }))
  const s = (performance.now() - t0) / 1000
  return { perSecond: chunks / s, bytesPerRead: (h.swarm.stats().bytesReceived - received) / chunks }
}

/**
 * The same reads on one host alone, of a file it wrote (every fragment on its disk): the whole
 * chunk from the store (the path before local range reads), then pages read alone with the
 * fragments' leaf hashes dropped ("cold": the first read of a fragment reads it whole) and kept
 * ("warm": as after writing it, or after one read of it).
 */
async function oneHost (data: Uint8Array, mib: number): Promise<Record<string, number>> {
  const figures: Record<string, number> = {}
  const t = new Teardown()
  try {
    const [h] = await startCluster(t, 1, { transport: 'tcp' })
    await h.volume.replaceFile('/rand.bin', [data], { wait: 'safe' })
    const chunks = h.volume.chunks
    const range = chunks.readRange.bind(chunks)
    const whole: typeof range = async (ref, start, end, opts) => (await chunks.readChunk(ref, opts)).subarray(start, end)
    for (const [mode, fn, leafHashes] of [['whole', whole, true], ['cold', range, true], ['warm', range, false]] as const) {
      chunks.readRange = fn
      try {
        // warm: one read of each fragment first, so every leaf hash is kept
        if (mode === 'warm') await randomReads(h, data, mib, READERS, true)
        for (const c of [1, READERS]) {
          const r = await randomReads(h, data, mib, c, leafHashes)
          figures[`read-random.hosts1.local.${mode}.c${c}.readsPerSec`] = r.perSecond
        }
      } finally {
        chunks.readRange = range
      }
    }
    const lc = chunks.localLeaves.counters
    figures['read-random.hosts1.slices'] = lc.slices
    figures['read-random.hosts1.mismatches'] = lc.mismatches
    if (lc.mismatches > 0) throw new Error(`read-random: ${lc.mismatches} local slices did not match their leaf hashes`)
    if (chunks.readCounters().rangeFallbacks > 0) throw new Error('read-random: local range reads fell back to whole chunks')
  } finally {
    await t.run()
  }
  return figures
}

export async function run (): Promise<Record<string, number>> {
  const mib = Number(process.env.DARKFS_BENCH_RANDOM_MIB ?? DEFAULT_MIB)
  const figures: Record<string, number> = { 'read-random.MiB': mib }
  const t = new Teardown()
  try {
    const hosts = await startCluster(t, HOSTS, { transport: 'tcp' })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === HOSTS - 1), 30_000)
    const data = randomBytes(mib * MiB)
    await hosts[0].volume.replaceFile('/rand.bin', [data], { wait: 'safe' })
    const reader = hosts[HOSTS - 1]
    await until('the reader sees the file', async () => { try { return (await reader.volume.stat('/rand.bin')).size === mib * MiB } catch { return false } }, 30_000)
    figures['read-random.k'] = reader.volume.chunks.params().k
    const chunks = reader.volume.chunks
    const range = chunks.readRange.bind(chunks)
    // before range reads: the read takes its bytes from the whole chunk
    const whole: typeof range = async (ref, start, end, opts) => (await chunks.readChunk(ref, opts)).subarray(start, end)
    for (const [mode, fn] of [['whole', whole], ['range', range]] as const) {
      chunks.readRange = fn
      try {
        for (const c of [1, READERS]) {
          const r = await randomReads(reader, data, mib, c)
          figures[`read-random.hosts${HOSTS}.other.${mode}.c${c}.readsPerSec`] = r.perSecond
          figures[`read-random.hosts${HOSTS}.other.${mode}.c${c}.KiBReceivedPerRead`] = r.bytesPerRead / 1024
        }
      } finally {
        chunks.readRange = range
      }
    }
    const rc = chunks.readCounters()
    figures['read-random.ranges'] = rc.ranges
    figures['read-random.rangeFallbacks'] = rc.rangeFallbacks
    // the range figures are of range reads only: one that fell back to the whole chunk measured the old path
    if (rc.rangeFallbacks > 0) throw new Error(`read-random: ${rc.rangeFallbacks} range reads fell back to whole chunks`)
    await t.run()
    Object.assign(figures, await oneHost(data, mib))
  } finally {
    await t.run()
  }
  return figures
}
