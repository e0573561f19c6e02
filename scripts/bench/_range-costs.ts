// What a six-host 4 KiB random read costs in CPU, part by part (issue 15, the randread line), not
// a bench module (index.ts skips `_` files): `npx node scripts/bench/_range-costs.ts`. The
// compare bench's figure (cpu.ms_per_op of randread.iops.darkfs-6) sums every thread of a process
// serving a mount, fio's requests and six hosts on an oversubscribed machine, and moves ±30%
// between runs; these parts, each in one thread and back to back, move less:
//   wire    two hosts (pnet, Noise, yamux, TCP on loopback), one stream, a 41-byte request and a
//           16,621-byte answer (a RANGE_WANT and its RANGE: one 16 KiB leaf and four proof hashes)
//           in turn: the transport's share of a read, both ends, with no darkfs work
//   read    six hosts in this thread (k=4, m=2), a DARKFS_RANGE_MIB (default 64) MiB file written on
//           host 0, pages read once each on host 5 through a handle (the mount's path without the
//           kernel), the reader's chunk cache dropped first: the whole read, both ends
//   reader alone  the same reads with the holders' answers of the rounds before handed back at
//           once (ChunkService's network.fetchRange replaced): the reader's own part (the
//           Volume, the open file, ChunkService.readRange, the leaf cache), without the network,
//           the holder or the proof check
//   swarm   host 5's Swarm.pullRange of one leaf of a fragment host 0 keeps, from host 0, the
//           proof checked: the network part of a read without the reader's Volume and
//           ChunkService (network.ts's choice of holder included in `read`, not here)
//   holder  on host 0, LocalLeaves.proof of a leaf of a fragment it keeps (what a holder does for
//           a RANGE_WANT before the send), Store.readSlice alone, and verifyRange (the reader's
//           check of the answer)
// Per part: CPU per operation (process.cpuUsage, user + system; the read rounds print the
// cluster's idle CPU of the 2 s before them beside theirs); the read and swarm rounds also the V8
// heap bytes allocated (getHeapStatistics().total_allocated_bytes: JS objects, not the
// ArrayBuffers' external bytes) and this thread's collections and their pauses, per 1,000. DARKFS_RANGE_N reads (default 3,000) per round,
// DARKFS_RANGE_ROUNDS rounds (default 3: the first warms the JIT up). DARKFS_RANGE_ANSWER_BYTES: the wire
// part's answer (default 16,621; 4,333 is a RANGE of one 4 KiB leaf of a 256 KiB fragment, six
// proof hashes), DARKFS_RANGE_PARTS=wire: that part alone; =swarm: the swarm and holder parts
// alone (no read rounds: for profiling the swarm's request and answer). DARKFS_RANGE_PROF=FILE: a
// CPU profile (.cpuprofile, for scripts/prof-summary.ts) of the swarm part's last round alone, none
// of the cluster's setup (writing the file) in it. DARKFS_RANGE_HEAP=FILE: a sampling heap profile
// (.heapprofile, for Chrome DevTools; objects collected since included) of that round.
import { randomBytes, randomInt } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { createHost, createNetworkKey } from '../../node/net/index.ts'
import { LEAF_BYTES, leafHashes, merkleRoot, rangeProof, rootFromLeaves, verifyRange } from '../../node/data/index.ts'
import type { ChunkRef, FragmentSlice, Network } from '../../node/data/index.ts'
import type { CID } from 'multiformats/cid'
import { Session } from 'node:inspector/promises'
import { writeFile } from 'node:fs/promises'
import { getHeapStatistics } from 'node:v8'
import { GC_MAJOR, GC_MINOR, GC_MS, GC_SLOTS, countGc } from './_gc-count.ts'

const MiB = 1 << 20
const mib = Number(process.env.DARKFS_RANGE_MIB ?? 64)
const N = Number(process.env.DARKFS_RANGE_N ?? 3000)
const ROUNDS = Number(process.env.DARKFS_RANGE_ROUNDS ?? 3)
/** A RANGE_WANT on the wire (swarm/protocol.ts, its frame) and a RANGE with one leaf and four hashes. */
const WANT_BYTES = 41
const ANSWER_BYTES = Number(process.env.DARKFS_RANGE_ANSWER_BYTES ?? 16_621)
/** DARKFS_RANGE_PARTS: 'wire' for the transport part alone, 'swarm' for the swarm and holder parts alone (default: every part). */
const PARTS = process.env.DARKFS_RANGE_PARTS ?? 'all'

const cpuUs = (c: NodeJS.CpuUsage): number => c.user + c.system
const out = (line: string): void => { process.stdout.write(`${line}\n`) }

/** This thread's collections so far (_gc-count.ts slots). */
const gcCounts = new Float64Array(GC_SLOTS)
countGc(gcCounts)

/** A mark of this thread's allocation: V8 heap bytes allocated so far, external memory, collections. */
function allocMark (): number[] {
  const h = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { total_allocated_bytes?: number }
  return [h.total_allocated_bytes ?? NaN, process.memoryUsage().arrayBuffers, gcCounts[GC_MAJOR], gcCounts[GC_MINOR], gcCounts[GC_MS]]
}

/** Heap bytes allocated, collections and their pause ms per 1,000 operations since `m0` (a mark), as text. */
async function allocSince (m0: number[], ops: number): Promise<string> {
  // the perf_hooks 'gc' entries arrive a turn later
  await new Promise(resolve => setImmediate(resolve))
  const m = allocMark()
  const per = 1000 / ops
  return `heap ${((m[0] - m0[0]) * per / MiB).toFixed(1)} MiB allocated, ${((m[2] - m0[2]) * per).toFixed(1)} major + ${((m[3] - m0[3]) * per).toFixed(1)} minor GCs, ${((m[4] - m0[4]) * per).toFixed(1)} ms GC pauses per 1,000`
}

/** CPU µs per call of `f`, over `n` calls after `n / 10` to warm up. */
async function perCall (n: number, f: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < n / 10; i++) await f(i)
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) await f(i)
  return cpuUs(process.cpuUsage(c0)) / n
}

/** 0..n-1 in random order. */
function shuffled (n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) { const j = randomInt(i + 1); [a[i], a[j]] = [a[j], a[i]] }
  return a
}

/** Streams opened so far by every host of `hosts`, all protocols (both ends count). */
function streamsOpened (hosts: ClusterHost[]): number {
  let n = 0
  for (const h of hosts) for (const { streams } of Object.values(h.host.traffic().protocols)) n += streams
  return n
}

async function wire (): Promise<void> {
  const key = createNetworkKey()
  const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join: [a.addresses()[0]] })
  try {
    await until('the two hosts connected', () => a.peers().length > 0, 30_000)
    const answer = new Uint8Array(ANSWER_BYTES)
    await b.handle('/darkfs-bench/range-costs/1', (stream: Stream) => {
      stream.addEventListener('message', () => { stream.send(answer) })
    })
    const s = await a.newStream(b.peerId, '/darkfs-bench/range-costs/1')
    const want = new Uint8Array(WANT_BYTES)
    let answered = (): void => {}
    let got = 0
    s.addEventListener('message', (e) => {
      got += e.data.byteLength
      if (got >= ANSWER_BYTES) { got = 0; answered() }
    })
    for (let round = 0; round < ROUNDS; round++) {
      const us = await perCall(N, async () => { await new Promise<void>(resolve => { answered = resolve; s.send(want) }) })
      out(`  wire: ${us.toFixed(0)} µs CPU per ${WANT_BYTES} B request and ${ANSWER_BYTES} B answer (round ${round + 1})`)
    }
    await s.close()
  } finally {
    await a.stop()
    await b.stop()
  }
}

async function cluster (): Promise<void> {
  const t = new Teardown()
  try {
    const hosts = await startCluster(t, 6, { transport: 'tcp' })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
    const data = randomBytes(mib * MiB)
    await hosts[0].volume.replaceFile('/range-costs.bin', [data], { wait: 'safe' })
    const reader = hosts[5]
    await until('the reader sees the file', async () => await reader.volume.stat('/range-costs.bin').then(s => s.size === data.byteLength, () => false), 60_000)
    // one page of each of N distinct 16 KiB leaves (a page in a leaf read before would come from
    // the reader's leaf cache), the same pages each round: every read asks a holder, or reads
    // the reader's own fragment
    const leafPages = LEAF_BYTES / 4096
    const pages = shuffled(data.byteLength / LEAF_BYTES).slice(0, N).map(l => l * leafPages + randomInt(leafPages))
    // the verified leaves each range read fetched, by fragment and leaf: answered again, without
    // the network, in the reader-alone rounds
    const network = (reader.volume.chunks as unknown as { network: Required<Pick<Network, 'fetchRange'>> }).network
    const fetchRange = network.fetchRange.bind(network)
    const answers = new Map<string, Uint8Array>()
    const answerKey = (ref: ChunkRef, s: FragmentSlice): string => `${String(ref.cid)}/${s.fragment}/${s.first}/${s.end}`
    network.fetchRange = async (ref, s, o) => {
      const got = await fetchRange(ref, s, o)
      answers.set(answerKey(ref, s), new Uint8Array(got))
      return got
    }
    const rounds = async (part: string): Promise<void> => {
      for (let round = 0; round < ROUNDS; round++) {
        // the cluster's CPU with no read going on (printed beside the reads': background bursts
        // make it too unsteady to take off)
        const i0 = process.cpuUsage()
        const it0 = performance.now()
        await new Promise(resolve => setTimeout(resolve, 2000))
        const idlePerMs = cpuUs(process.cpuUsage(i0)) / (performance.now() - it0)
        reader.volume.chunks.dropCache({ leafHashes: false })
        const fh = await reader.volume.open('/range-costs.bin', 'r')
        const buf = new Uint8Array(4096)
        const ranges0 = reader.volume.chunks.readCounters().ranges
        const streams0 = streamsOpened(hosts)
        const a0 = allocMark()
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        try {
          for (const page of pages) {
            const { bytesRead } = await fh.read(buf, 0, 4096, page * 4096)
            if (bytesRead !== 4096 || !Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).equals(data.subarray(page * 4096, page * 4096 + 4096))) throw new Error(`range-costs: wrong bytes at page ${page}`)
          }
        } finally {
          await fh.close()
        }
        const us = cpuUs(process.cpuUsage(c0))
        const ms = performance.now() - t0
        const alloc = await allocSince(a0, pages.length)
        const rc = reader.volume.chunks.readCounters()
        out(`  ${part}: ${(us / pages.length).toFixed(0)} µs CPU per 4 KiB read (the cluster idle: ${idlePerMs.toFixed(0)} ms/s just before), ${(pages.length / ms * 1000).toFixed(0)} reads/s, ${rc.ranges - ranges0} range reads, ${rc.rangeFallbacks} fallbacks, ${streamsOpened(hosts) - streams0} streams opened (round ${round + 1}); ${alloc}`)
      }
    }
    if (PARTS !== 'swarm') await rounds('read')
    if (PARTS !== 'swarm') network.fetchRange = async (ref, s) => {
      const got = answers.get(answerKey(ref, s))
      if (got === undefined) throw new Error(`range-costs: no answer recorded for leaves [${s.first}, ${s.end}) of chunk ${String(ref.cid)}`)
      return new Uint8Array(got)
    }
    if (PARTS !== 'swarm') await rounds('reader alone (the answers of the rounds before, no network, no holder, no proof check)')
    network.fetchRange = fetchRange
    // a holder's part: host 0 keeps the leaf hashes of the fragments it stored
    const h = hosts[0]
    const leaves = h.volume.chunks.localLeaves
    const held: CID[] = []
    for await (const cid of h.store.cids()) {
      if (leaves.keeps(cid)) held.push(cid)
      if (held.length === 64) break
    }
    if (held.length === 0) throw new Error('range-costs: host 0 keeps the leaf hashes of no fragment')
    const leafOf = (i: number): number => i % 16
    // the same leaves asked of host 0 by host 5 through the swarm (RANGE_WANT, RANGE), the
    // proof checked: a range read's network part without the Volume, ChunkService and
    // network.ts's choice of holder
    // by the index in `held` (a CID's string, ~5 µs, made per pull was counted in the swarm's figure)
    const roots: Array<{ root: Uint8Array, length: number }> = []
    for (const cid of held) {
      const got = await leaves.slice(cid, 0, 1)
      if (got === undefined) throw new Error(`range-costs: host 0 no longer keeps ${String(cid)}`)
      roots.push({ root: rootFromLeaves(got.length, got.hashes), length: got.length })
    }
    const pull = async (i: number): Promise<void> => {
      const cid = held[i % held.length]
      const { root, length } = roots[i % held.length]
      const first = leafOf(i)
      await reader.swarm.pullRange({ cid, first, end: first + 1, verify: (bytes, proof) => verifyRange(root, length, first, first + 1, bytes, proof) }, [h.host.peerId])
    }
    // DARKFS_RANGE_PROF=FILE: a CPU profile of the swarm's last round alone (none of the setup)
    const prof = process.env.DARKFS_RANGE_PROF
    // DARKFS_RANGE_HEAP=FILE: a sampling heap profile (.heapprofile, objects collected since
    // included: what the round allocated, not what it kept) of the swarm's last round alone
    const heap = process.env.DARKFS_RANGE_HEAP
    for (let round = 0; round < ROUNDS; round++) {
      const session = prof !== undefined && round === ROUNDS - 1 ? new Session() : undefined
      if (session !== undefined) {
        session.connect()
        await session.post('Profiler.enable')
        await session.post('Profiler.start')
      }
      const heapSession = heap !== undefined && round === ROUNDS - 1 ? new Session() : undefined
      if (heapSession !== undefined) {
        heapSession.connect()
        await heapSession.post('HeapProfiler.enable')
        await heapSession.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      }
      const a0 = allocMark()
      const us = await perCall(N, pull)
      out(`  swarm: pullRange of one leaf from host 0, verified, ${us.toFixed(0)} µs CPU (round ${round + 1}); ${await allocSince(a0, N * 1.1)}`)
      if (heapSession !== undefined) {
        const { profile } = await heapSession.post('HeapProfiler.stopSampling')
        await writeFile(heap!, JSON.stringify(profile))
        heapSession.disconnect()
      }
      if (session !== undefined) {
        const { profile } = await session.post('Profiler.stop')
        await writeFile(prof!, JSON.stringify(profile))
        session.disconnect()
      }
    }
    out(`  holder: LocalLeaves.proof ${(await perCall(N, async i => await leaves.proof(held[i % held.length], leafOf(i), leafOf(i) + 1))).toFixed(1)} µs CPU; Store.readSlice alone ${(await perCall(N, async i => await h.store.readSlice(held[i % held.length], leafOf(i) * LEAF_BYTES, LEAF_BYTES))).toFixed(1)} µs (${held.length} fragments)`)
  } finally {
    await t.run()
  }
  const fragment = randomBytes(256 * 1024)
  const root = merkleRoot(fragment)
  const hashes = leafHashes(fragment)
  const p = rangeProof(fragment, 5, 6)
  if (hashes.byteLength !== 16 * 32 || !verifyRange(root, fragment.byteLength, 5, 6, p.bytes, p.proof)) throw new Error('range-costs: a proof does not verify')
  out(`  reader: verifyRange of one 16 KiB leaf of a 256 KiB fragment ${(await perCall(N * 5, () => verifyRange(root, fragment.byteLength, 5, 6, p.bytes, p.proof))).toFixed(1)} µs CPU`)
}

out('range-costs')
if (PARTS !== 'swarm') await wire()
if (PARTS !== 'wire') await cluster()
