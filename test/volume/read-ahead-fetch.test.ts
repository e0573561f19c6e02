// A read that joins a chunk fetch started ahead of it (ChunkService.readAhead, which
// Volume.readContent's prefetch and read-ahead.ts use) must not inherit that fetch's failure:
// its deadline ran from when the fetch was started, maybe long before the read and behind a
// window of other fetches, so on a loaded host it times out where the read's own would not. The
// read fetches again, once, on its own; it fails only when that fetch fails too. A scripted
// Network: each fetch waits until the test answers it with the fragment or fails it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { ChunkService, Staging, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { BlockUnavailableError } from '../../node/index.ts'

interface Fetch { cids: CID[], answer: () => void, fail: (err: Error) => void }

/** A chunk service whose one chunk (k = 1) only the scripted network holds. */
async function remoteChunk (t: Teardown): Promise<{ chunks: ChunkService, ref: ChunkRef, bytes: Uint8Array, nextFetch: () => Promise<Fetch>, fetches: () => number }> {
  const store = await Store.open(join(await tempDir(t), 'store'))
  t.add(async () => { await store.close() })
  const bytes = randomBytes(1 << 20)
  const made: Fetch[] = []
  const waiting: Array<(f: Fetch) => void> = []
  let handedOut = 0
  const network: Network = {
    params: () => ({ k: 1, m: 0 }),
    place: async () => {},
    fetchOne: async (cid) => { throw new Error(`no peer has ${cid.toString()}`) },
    fetch: async (cids: CID[], _need: number, opts: AbortOptions = {}) => {
      return await new Promise<Map<string, Uint8Array>>((resolve, reject) => {
        opts.signal?.addEventListener('abort', () => { reject(opts.signal?.reason) }, { once: true })
        const f: Fetch = { cids, answer: () => { resolve(new Map([[cids[0].toString(), bytes]])) }, fail: reject }
        made.push(f)
        const w = waiting.shift()
        if (w !== undefined) { handedOut++; w(f) }
      })
    }
  }
  const staging = new Staging()
  const chunks = new ChunkService(store, { network, staging })
  const { ref } = await chunks.storeChunk(bytes, 0, { params: { k: 1, m: 0 } })
  // the chunk leaves this host: only the network has it now (not the store, nor the staging its
  // placement would have let go of: a read takes a staged fragment, seqw43)
  for (const cid of ref.fragments) await store.delete(cid)
  staging.release(ref.cid!.toString())
  chunks.dropCache()
  return {
    chunks,
    ref,
    bytes,
    fetches: () => made.length,
    nextFetch: async () => {
      if (handedOut < made.length) return made[handedOut++]
      return await new Promise<Fetch>(resolve => { waiting.push(resolve) })
    }
  }
}

/** The next fetch, or the read's outcome if it settles first (it should wait for that fetch). */
async function again (next: Promise<Fetch>, read: Promise<Uint8Array>): Promise<Fetch> {
  return await Promise.race([next, read.then(() => { throw new Error('the read ended without fetching again') })])
}

describe('ChunkService: a read joining a fetch started ahead of it', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('the fetch ahead fails after the read joined it: the read fetches again on its own and gets the bytes', async () => {
    const r = await remoteChunk(t)
    const ahead = r.chunks.readAhead(r.ref)
    assert.ok(ahead !== undefined, 'a fetch ahead started')
    const first = await r.nextFetch()
    // joins the fetch ahead (one fetch per chunk at a time)
    const read = r.chunks.readChunk(r.ref)
    first.fail(new Error('no holder answered in time (test)'))
    assert.equal(await ahead, undefined, 'the fetch ahead reports its failure to no one')
    const second = await again(r.nextFetch(), read)
    assert.deepEqual(second.cids.map(String), r.ref.fragments.map(String))
    second.answer()
    assert.ok(Buffer.from(await read).equals(r.bytes), 'the read has the chunk')
    assert.equal(r.fetches(), 2)
  })

  it('the read\'s own fetch fails too: the read fails, naming the cause, after one fetch of its own', async () => {
    const r = await remoteChunk(t)
    void r.chunks.readAhead(r.ref)
    const first = await r.nextFetch()
    const read = r.chunks.readChunk(r.ref)
    first.fail(new Error('no holder answered in time (test)'))
    const second = await again(r.nextFetch(), read)
    second.fail(new Error('no peer holds it (test)'))
    await assert.rejects(read, (err: Error) => err instanceof BlockUnavailableError && /no peer holds it \(test\)/.test(err.message))
    assert.equal(r.fetches(), 2, 'no third fetch')
  })

  it('a read joining another read\'s fetch shares its failure (no fetch again)', async () => {
    const r = await remoteChunk(t)
    const a = r.chunks.readChunk(r.ref)
    const first = await r.nextFetch()
    const b = r.chunks.readChunk(r.ref)
    first.fail(new Error('no peer holds it (test)'))
    for (const read of [a, b]) await assert.rejects(read, (err: Error) => err instanceof BlockUnavailableError && /no peer holds it \(test\)/.test(err.message))
    assert.equal(r.fetches(), 1)
  })
})
