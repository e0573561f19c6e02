// ReadAhead's sequential detection (node/read-ahead.ts) with reads that reach it out of order, as
// a sequential reader's do through the mount (the kernel's readahead has several reads in flight
// and several FUSE threads hand them over): the run must go on, its window never reset, and no
// chunk fetched ahead twice; a read far off still ends it, and random large reads never start one.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ReadAhead, REORDER_READS } from '../../node/read-ahead.ts'
import type { ChunkRef, Manifest } from '../../node/data/index.ts'

const MiB = 1 << 20
const CHUNKS = 256

async function manifestOf (chunks: number): Promise<Manifest> {
  const refs: ChunkRef[] = []
  for (let i = 0; i < chunks; i++) {
    const cid = CID.createV1(0x55, await sha256.digest(new Uint8Array([i & 0xff, i >> 8])))
    refs.push({ offset: i * MiB, size: MiB, cid, k: 1, m: 0, fragments: [cid] })
  }
  return { v: 3, size: chunks * MiB, chunkSize: MiB, chunks: refs }
}

/** A ReadAhead over a chunk service that records which chunks it was asked to fetch ahead. */
function recorder (): { ahead: ReadAhead, fetched: number[] } {
  const fetched: number[] = []
  const ahead = new ReadAhead({
    readaheadBytes: 16 * MiB,
    readAhead: (ref: ChunkRef) => { fetched.push(ref.offset / MiB); return Promise.resolve(new Uint8Array(0)) }
  })
  return { ahead, fetched }
}

/** Serves one read of [position, position + length) as OpenFile.read does: observe, then fill its chunks. */
function read (ahead: ReadAhead, version: object, manifest: Manifest, position: number, length: number): void {
  ahead.observe(position, length)
  for (let i = Math.floor(position / MiB); i * MiB < position + length && i < manifest.chunks.length; i++) ahead.fill(version, manifest, i, i)
}

describe('ReadAhead: reads out of order', function () {
  it('observe(): 1 MiB reads of a sequential reader arriving out of order stay one run, each chunk fetched ahead once', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead, fetched } = recorder()
    const version = {}
    // pairs swapped, and now and then one three places late: the orders several FUSE threads give
    const order = [0, 2, 1, 3, 5, 4, 6, 9, 7, 8, 11, 10, 12, 13, 15, 14, 16, 19, 17, 18]
    const seen: boolean[] = []
    for (const i of order) {
      read(ahead, version, manifest, i * MiB, MiB)
      seen.push(ahead.sequential)
    }
    // sequential from the third read on (the first to continue another), and never reset after
    assert.deepEqual(seen.slice(2), seen.slice(2).map(() => true))
    assert.equal(new Set(fetched).size, fetched.length, `a chunk fetched ahead twice (a reset): ${fetched.join(',')}`)
    assert.ok(fetched.includes(20) && fetched.includes(24), `fetches ahead reach past the reads: ${fetched.join(',')}`)
    assert.ok(ahead.held > 0)
  })

  it('observe(): 128 KiB reads out of order by more than the slack stay one run', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead, fetched } = recorder()
    const version = {}
    const K = 128 << 10
    // the kernel's readahead in 128 KiB requests, taken by 8 threads: reads up to 7 places late
    const order = [0, 1, 7, 2, 3, 4, 6, 5, 8, 15, 9, 10, 11, 12, 13, 14, 16, 17, 23, 18, 19, 20, 21, 22, 24]
    let resets = 0
    let was = false
    for (const i of order) {
      read(ahead, version, manifest, i * K, K)
      if (was && !ahead.sequential) resets++
      was = ahead.sequential
    }
    assert.equal(resets, 0)
    assert.ok(ahead.sequential)
    assert.equal(new Set(fetched).size, fetched.length, `a chunk fetched ahead twice (a reset): ${fetched.join(',')}`)
  })

  it('fill(): a seek back within the reorder window after a run fetches nothing the run read already', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead, fetched } = recorder()
    const version = {}
    for (let i = 0; i < 12; i++) read(ahead, version, manifest, i * MiB, MiB)
    const before = fetched.length
    for (const i of [5, 6, 7, 6, 5, 4]) read(ahead, version, manifest, i * MiB, MiB)
    const again = fetched.slice(before)
    assert.deepEqual(again.filter(j => j < 12), [], `chunks the run read fetched again: ${again.join(',')}`)
  })

  it('observe(): a read further than REORDER_READS of its lengths from the run ends it, and nothing is held ahead', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead } = recorder()
    const version = {}
    for (const i of [0, 1, 2, 3]) read(ahead, version, manifest, i * MiB, MiB)
    assert.ok(ahead.sequential)
    assert.ok(ahead.held > 0)
    read(ahead, version, manifest, (4 + REORDER_READS + 1) * MiB, MiB)
    assert.equal(ahead.sequential, false)
    assert.equal(ahead.held, 0)
  })

  it('observe(): a reader going backwards in 1 MiB reads (each ending where the last began) never counts as sequential', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead, fetched } = recorder()
    const version = {}
    for (let i = 100; i > 60; i--) {
      read(ahead, version, manifest, i * MiB, MiB)
      assert.equal(ahead.sequential, false, `the read at ${i} MiB counted as sequential`)
    }
    assert.deepEqual(fetched, [])
  })

  it('observe(): random 1 MiB reads never count as sequential, nor fetch ahead, also when some land within the reordering window', async function () {
    const manifest = await manifestOf(CHUNKS)
    const { ahead, fetched } = recorder()
    const version = {}
    // MiB offsets: far jumps, and pairs a few MiB apart (within REORDER_READS reads, none continuing another)
    const order = [100, 40, 45, 200, 190, 10, 17, 150, 143, 60, 66, 250, 244, 3, 120, 125, 131]
    for (const i of order) {
      read(ahead, version, manifest, i * MiB, MiB)
      assert.equal(ahead.sequential, false, `the read at ${i} MiB counted as sequential`)
    }
    assert.deepEqual(fetched, [])
  })
})
