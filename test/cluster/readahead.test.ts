// Readahead across hosts (node/read-ahead.ts; issue 15 item 4): a sequential reader on a host
// that cannot rebuild any chunk alone keeps several chunk fetches in flight at once; random reads
// fetch nothing ahead; and the chunks fetched ahead never stand in for another version's.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20
/** Chunks of the test file. */
const CHUNKS = 12
/** The read size of a FUSE request. */
const FUSE_READ = 128 << 10

async function sees (h: ClusterHost, path: string, check: (ino: number) => boolean = () => true): Promise<void> {
  await until(`${h.name} sees ${path}`, async () => {
    try { return check((await h.volume.stat(path)).ino) } catch { return false }
  })
}

describe('readahead across hosts (six in-process hosts, k=4, m=2)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const data = randomBytes(CHUNKS * MiB)
  /** What /seq.bin holds now (a test below rewrites it). */
  let current = data

  before(async () => {
    hosts = await startMesh(t, 6)
    await hosts[0].volume.replaceFile('/seq.bin', [data], { wait: 'safe' })
    for (const h of hosts) await sees(h, '/seq.bin')
  })
  after(async () => { await t.run() })

  /** A host other than the writer that cannot rebuild any chunk of the file from its own store. */
  /**
   * A remote reader of /seq.bin as last written, its decoded chunks dropped (not the manifest), and its swarm's own
   * has() and pullAny() (a test replaces them to watch or fail the fetches, and puts them back).
   * Every host is on the version written last first (a test above rewrote the file): the read
   * must find that version's bytes, not the first's.
   */
  async function coldReader (): Promise<{ reader: ClusterHost, swarm: ClusterHost['swarm'], has: ClusterHost['swarm']['has'], pullAny: ClusterHost['swarm']['pullAny'] }> {
    const latest = (await chunksOf(hosts[0], '/seq.bin')).map(r => r.cid!.toString()).join()
    for (const h of hosts) await until(`${h.name} has the latest version of /seq.bin`, async () => (await chunksOf(h, '/seq.bin')).map(r => r.cid!.toString()).join() === latest)
    const reader = await remoteReader()
    reader.volume.chunks.dropCache()
    // the file's manifest read again (dropCache drops it too): these cases watch chunk fetches
    await chunksOf(reader, '/seq.bin')
    const swarm = reader.swarm
    return { reader, swarm, has: swarm.has.bind(swarm), pullAny: swarm.pullAny.bind(swarm) }
  }

  async function remoteReader (not: ClusterHost[] = []): Promise<ClusterHost> {
    for (const h of hosts.slice(1)) {
      if (not.includes(h)) continue
      const refs = await chunksOf(h, '/seq.bin')
      if ((await Promise.all(refs.map(async r => await h.volume.chunks.hasLocally(r)))).every(held => !held)) return h
    }
    throw new Error('no host without a whole chunk of the file')
  }

  it('a sequential read in FUSE-sized pieces has several chunk fetches in flight at once, each chunk fetched once', async () => {
    const { reader, swarm, pullAny } = await coldReader()
    const chunks = reader.volume.chunks
    const first = new Set((await chunksOf(reader, '/seq.bin'))[0].fragments.map(c => c.toString()))
    // the pulls of every chunk after the first wait until the test lets them go: how many
    // fetches the reader has in flight at once is then the code's doing, not the machine's speed
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    swarm.pullAny = async (cids, need, from, opts) => {
      if (!cids.some(c => first.has(c.toString()))) await gate
      return await pullAny(cids, need, from, opts)
    }
    chunks.markReadPeak()
    const before = chunks.readCounters()
    const fh = await reader.volume.open('/seq.bin', 'r')
    try {
      const buf = new Uint8Array(FUSE_READ)
      for (let pos = 0; pos < data.byteLength; pos += FUSE_READ) {
        const read = fh.read(buf, 0, FUSE_READ, pos)
        if (pos === MiB) {
          // the reader has moved on to the second chunk, whose fetch is held: the chunks ahead of
          // it are being fetched meanwhile
          await until('six chunk fetches in flight at once', () => chunks.readCounters().fetching >= 6)
          release()
        }
        const { bytesRead } = await read
        assert.equal(bytesRead, FUSE_READ)
        assert.ok(Buffer.from(buf).equals(data.subarray(pos, pos + FUSE_READ)), `bytes at ${pos}`)
      }
    } finally {
      release()
      swarm.pullAny = pullAny
      await fh.close()
    }
    const after = chunks.readCounters()
    assert.equal(after.fetches - before.fetches, CHUNKS, 'every chunk came from the network, once')
    assert.equal(after.ahead - before.ahead, CHUNKS - 1, 'every chunk after the first was fetched ahead of the reader')
    assert.ok(after.fetchingPeak >= 6, `at most ${after.fetchingPeak} chunk fetches in flight at once`)
  })

  it('random 4 KiB reads fetch nothing ahead: each reads just its leaves (verified range reads), no chunk', async () => {
    const reader = await remoteReader()
    const chunks = reader.volume.chunks
    chunks.dropCache()
    const before = chunks.readCounters()
    // each read at least two chunks away from the last: no run of reads is sequential
    const order = [7, 2, 10, 0, 5, 11, 3, 8]
    const fh = await reader.volume.open('/seq.bin', 'r')
    try {
      const buf = new Uint8Array(4096)
      for (const c of order) {
        const pos = c * MiB + 12_345
        await fh.read(buf, 0, buf.byteLength, pos)
        assert.ok(Buffer.from(buf).equals(data.subarray(pos, pos + 4096)), `bytes at ${pos}`)
      }
    } finally {
      await fh.close()
    }
    await until('no fetch in flight', () => chunks.readCounters().fetching === 0)
    const after = chunks.readCounters()
    assert.equal(after.ahead - before.ahead, 0, 'no chunk fetched ahead')
    assert.equal(after.ranges - before.ranges, order.length, 'one range read per read')
    assert.equal(after.fetches - before.fetches, 0, 'no chunk fetched whole')
  })

  it('random 4 KiB reads, one now and then landing near the last one\'s end: no chunk fetched whole or ahead', async () => {
    const reader = await remoteReader()
    const chunks = reader.volume.chunks
    chunks.dropCache()
    const before = chunks.readCounters()
    // pairs: the second of each starts within SEQUENTIAL_SLACK_BYTES of the first's end (a
    // random read does that once in a while), then the reader jumps chunks away
    const order = [7 * MiB + 12_345, 7 * MiB + 300_000, 2 * MiB + 5_000, 2 * MiB + 1_000, 10 * MiB + 700_000, 10 * MiB + 400_000, 4 * MiB + 20_000]
    const fh = await reader.volume.open('/seq.bin', 'r')
    try {
      const buf = new Uint8Array(4096)
      for (const pos of order) {
        await fh.read(buf, 0, buf.byteLength, pos)
        assert.ok(Buffer.from(buf).equals(current.subarray(pos, pos + 4096)), `bytes at ${pos}`)
      }
    } finally {
      await fh.close()
    }
    await until('no fetch in flight', () => chunks.readCounters().fetching === 0)
    const after = chunks.readCounters()
    assert.equal(after.ahead - before.ahead, 0, 'no chunk fetched ahead')
    assert.equal(after.fetches - before.fetches, 0, 'no chunk fetched whole')
    assert.equal(after.ranges - before.ranges, order.length, 'one range read per read')
  })

  it('a file rewritten while read ahead: an open handle reads the new version, a reader keeps its own', async () => {
    const reader = await remoteReader()
    const chunks = reader.volume.chunks
    chunks.dropCache()
    const pinned = await reader.volume.reader('/seq.bin')
    const fh = await reader.volume.open('/seq.bin', 'r')
    const next = randomBytes(CHUNKS * MiB)
    try {
      const buf = new Uint8Array(FUSE_READ)
      // two MiB in FUSE-sized pieces through both: each has chunks of the first version fetched ahead
      for (let pos = 0; pos < 2 * MiB; pos += FUSE_READ) {
        await fh.read(buf, 0, FUSE_READ, pos)
        assert.ok(Buffer.from(buf).equals(data.subarray(pos, pos + FUSE_READ)), `handle, first version at ${pos}`)
        assert.ok(Buffer.from(await pinned.read(pos, FUSE_READ)).equals(data.subarray(pos, pos + FUSE_READ)), `reader at ${pos}`)
      }
      assert.ok(chunks.readCounters().ahead > 0, 'chunks of the first version were fetched ahead')
      await until('the fetches ahead are over', () => chunks.readCounters().fetching === 0)
      const old = (await chunksOf(reader, '/seq.bin'))[0].cid!.toString()
      await hosts[0].volume.replaceFile('/seq.bin', [next], { wait: 'safe' })
      current = next
      await until('the reader has the new version', async () => (await chunksOf(reader, '/seq.bin'))[0].cid!.toString() !== old)
      for (let pos = 2 * MiB; pos < next.byteLength; pos += FUSE_READ) {
        await fh.read(buf, 0, FUSE_READ, pos)
        assert.ok(Buffer.from(buf).equals(next.subarray(pos, pos + FUSE_READ)), `handle, new version at ${pos}`)
        assert.ok(Buffer.from(await pinned.read(pos, FUSE_READ)).equals(data.subarray(pos, pos + FUSE_READ)), `reader, still the first version at ${pos}`)
      }
    } finally {
      await fh.close()
    }
  })

  it('network.fetch when no target answers its have-query in time: the pull asks those targets per fragment, not every peer for every fragment', async () => {
    const { reader, swarm, has, pullAny } = await coldReader()
    const froms: Array<Map<string, string[]> | string[]> = []
    // every have-query fails as a timed-out one does
    swarm.has = async () => { throw new Error('have-query timed out (test)') }
    // and the first pull of each fetch, from the placement targets alone, finds nothing (as when
    // repair moved the fragments): the fetch goes on to ask who holds them
    const guessed = new Set<string>()
    swarm.pullAny = async (cids, need, from, opts) => {
      const key = cids.map(c => c.toString()).join()
      if (!guessed.has(key)) {
        guessed.add(key)
        throw new Error('the placement targets hold none of them (test)')
      }
      froms.push(from)
      return await pullAny(cids, need, from, opts)
    }
    try {
      const bytes = await reader.volume.readFile('/seq.bin')
      assert.ok(Buffer.from(bytes).equals(current), 'the file reads whole, as last written')
    } finally {
      swarm.has = has
      swarm.pullAny = pullAny
    }
    assert.ok(froms.length > 0)
    for (const from of froms) {
      assert.ok(from instanceof Map, 'the pull was told whom to ask for each fragment')
      for (const peers of from.values()) assert.ok(peers.length > 0, 'every fragment has peers to ask')
    }
  })

  it('network.fetch of a placed chunk asks each fragment of the host placement put it on, with no have-query', async () => {
    const { reader, swarm, has, pullAny } = await coldReader()
    let queries = 0
    const froms: Array<Map<string, string[]> | string[]> = []
    swarm.has = async (cids, peer, opts) => { queries++; return await has(cids, peer, opts) }
    swarm.pullAny = async (cids, need, from, opts) => { froms.push(from); return await pullAny(cids, need, from, opts) }
    try {
      const bytes = await reader.volume.readFile('/seq.bin')
      assert.ok(Buffer.from(bytes).equals(current), 'the file reads whole, as last written')
    } finally {
      swarm.has = has
      swarm.pullAny = pullAny
    }
    assert.equal(queries, 0, 'no have-query')
    assert.equal(froms.length, CHUNKS, 'one pull per chunk')
    for (const from of froms) {
      assert.ok(from instanceof Map, 'the pull was told whom to ask for each fragment')
      for (const peers of from.values()) assert.ok(peers.length <= 1, `each fragment asked of its one target, not of ${peers.length} hosts`)
    }
  })
})
