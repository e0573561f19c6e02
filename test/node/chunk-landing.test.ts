// A chunk read writes the data fragments it fetches straight into the chunk as they arrive
// (ChunkLanding, Network.fetch `land`; read42): one copy per fragment, not a buffer of its own and
// a copy into the chunk. The chunk is made of what the fetch returned (each fragment verified by
// the swarm) and nothing else: a place written by a frame the fetch did not return (one refused
// by its check, or still arriving from a hedged request when the fetch was over) is not used as
// the chunk, so a late or wrong write can never show through it.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { ChunkService, Store, CHUNK_SIZE, encodeChunk } from '../../node/data/index.ts'
import type { Network } from '../../node/data/index.ts'
import type { Landing } from '../../node/data/blocks.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

type Land = (cid: CID, bytes: number) => Landing | undefined
/** What the fake network does with each data fragment it is asked for (by index). */
type Deliver = (i: number, fragment: Uint8Array, land: Land | undefined, cid: CID) => Uint8Array
type Fetch = (cids: CID[], need: number, opts: { land?: Land, signal?: AbortSignal }) => Promise<Map<string, Uint8Array>>

describe('ChunkService: data fragments land in the chunk', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  const bytes = new Uint8Array(randomBytes(CHUNK_SIZE))
  const encoded = encodeChunk(bytes, 0, 4, 2)
  const ref = encoded.ref
  const fragmentOf = (cid: CID): Uint8Array => encoded.blocks.find(b => b.cid.equals(cid))!.bytes

  /**
   * A reader over a network that hands the data fragments over by `deliver`; its store holds
   * `local` (fragment index -> the bytes on its disk under that fragment's CID, rot included).
   */
  async function reader (deliver: Deliver, local = new Map<number, Uint8Array>()): Promise<{ chunks: ChunkService, lands: number }> {
    const store = await Store.open(join(await tempDir(t), 's'))
    t.add(async () => { await store.close() })
    // (`verified`: stored as given, as a disk that rotted after the write would hold it)
    for (const [i, b] of local) await store.put(ref.fragments[i], b, { verified: true })
    const seen = { lands: 0 }
    const chunks = over(store, async (cids, need, opts) => {
      await new Promise(resolve => setImmediate(resolve))
      const got = new Map<string, Uint8Array>()
      for (const cid of cids.slice(0, need)) {
        const i = ref.fragments.findIndex(f => f.equals(cid))
        const land: Land | undefined = opts.land === undefined ? undefined : (c, n) => { seen.lands++; return opts.land!(c, n) }
        got.set(cid.toString(), deliver(i, fragmentOf(cid), land, cid))
      }
      return got
    })
    return { chunks, get lands () { return seen.lands } }
  }

  /** A chunk service reading through `store` and a network whose fetch is `fetch`. */
  function over (store: Store, fetch: Fetch): ChunkService {
    const network = {
      params: () => ({ k: 4, m: 2 }),
      fetch,
      fetchOne: async () => { throw new Error('no manifest here') },
      place: async () => {}
    } as unknown as Network
    return new ChunkService(store, { network, cacheBytes: 0 })
  }

  it('a read whose fetch failed (unreachable) or was aborted gives out no place afterwards (review42d)', async () => {
    for (const abort of [false, true]) {
      const store = await Store.open(join(await tempDir(t), 's'))
      t.add(async () => { await store.close() })
      let land: Land | undefined
      const ac = new AbortController()
      const chunks = over(store, async (_cids, _need, opts) => {
        land = opts.land
        if (abort) ac.abort()
        throw new Error('no peer has it')
      })
      await assert.rejects(chunks.readChunk(ref, { signal: ac.signal }))
      assert.ok(land !== undefined, 'the fetch was given a land')
      // a want the failed read shared (another pull still listening) asks its land for a frame now
      assert.ok(land(ref.fragments[0], fragmentOf(ref.fragments[0]).byteLength) === undefined, `${abort ? 'aborted' : 'failed'}: the read's dropped buffer is not handed out as a place`)
    }
  })

  it('fragments written into their places as they arrive make the chunk, with no copy of their own', async () => {
    const { chunks } = await reader((_i, fragment, land, cid) => {
      const place = land?.(cid, fragment.byteLength)
      assert.ok(place !== undefined, 'each data fragment from a peer has a place in the chunk')
      place.bytes.set(fragment)
      place.landed()
      return place.bytes
    })
    const got = await chunks.readChunk(ref)
    assert.ok(Buffer.from(got).equals(bytes))
    assert.equal(chunks.readCounters().landed, 4)
  })

  it('a place still being written when the fetch is over (a hedged frame, arriving late) is not the chunk: a write after cannot show through', async () => {
    const late: Landing[] = []
    const { chunks } = await reader((i, fragment, land, cid) => {
      const place = land?.(cid, fragment.byteLength)
      assert.ok(place !== undefined)
      if (i === 1) {
        // this frame has taken the place and is still arriving; the fragment came from another peer
        late.push(place)
        return Uint8Array.from(fragment)
      }
      place.bytes.set(fragment)
      place.landed()
      return place.bytes
    })
    const got = await chunks.readChunk(ref)
    assert.ok(Buffer.from(got).equals(bytes))
    // the late frame's bytes (garbage, say) land now
    assert.equal(late.length, 1)
    late[0].bytes.fill(0xee)
    late[0].landed()
    assert.ok(Buffer.from(got).equals(bytes), 'the chunk read is not the memory the late frame wrote')
    assert.equal(chunks.readCounters().landed, 0)
  })

  it('a place written by a frame the fetch did not return (refused by its check) is not the chunk', async () => {
    const wrong: Landing[] = []
    const { chunks } = await reader((i, fragment, land, cid) => {
      const place = land?.(cid, fragment.byteLength)
      assert.ok(place !== undefined)
      if (i === 2) {
        // a wrong block landed whole, then failed its check; the right one came from another peer
        place.bytes.fill(0xee)
        place.landed()
        wrong.push(place)
        return Uint8Array.from(fragment)
      }
      place.bytes.set(fragment)
      place.landed()
      return place.bytes
    })
    const got = await chunks.readChunk(ref)
    assert.ok(Buffer.from(got).equals(bytes))
    wrong[0].bytes.fill(0xdd)
    assert.ok(Buffer.from(got).equals(bytes), 'the chunk read is not the memory the wrong block was written to')
    assert.equal(chunks.readCounters().landed, 0)
  })

  it('a place is given once: a second frame of the same fragment (a hedged request) gets none', async () => {
    const { chunks } = await reader((_i, fragment, land, cid) => {
      const place = land?.(cid, fragment.byteLength)
      assert.ok(place !== undefined)
      // (assert.ok, not equal: a place wrongly given would be diffed, 256 KiB of it, until memory runs out)
      assert.ok(land?.(cid, fragment.byteLength) === undefined, 'a second frame of it is not given the place')
      assert.ok(land?.(cid, fragment.byteLength - 1) === undefined, 'nor a frame of another length')
      place.bytes.set(fragment)
      place.landed()
      return place.bytes
    })
    assert.ok(Buffer.from(await chunks.readChunk(ref)).equals(bytes))
  })

  it('data fragments on this host are read into their places; one rotted on disk is refused there and the chunk is still right', async () => {
    const rotted = Uint8Array.from(fragmentOf(ref.fragments[1]))
    rotted[1000] ^= 1
    const local = new Map([[0, fragmentOf(ref.fragments[0])], [1, rotted], [2, fragmentOf(ref.fragments[2])]])
    const asked: number[] = []
    const { chunks } = await reader((i, fragment, land, cid) => {
      asked.push(i)
      const place = land?.(cid, fragment.byteLength)
      if (place === undefined) return Uint8Array.from(fragment)
      place.bytes.set(fragment)
      place.landed()
      return place.bytes
    }, local)
    const got = await chunks.readChunk(ref)
    assert.ok(Buffer.from(got).equals(bytes), 'the rotted fragment read into its place did not stay in the chunk')
    assert.ok(asked.includes(1) || asked.some(i => i >= 4), 'the rotted fragment was made up for from peers')
  })

  it('the fragments not here are fetched while the one here is read from disk, not after it (cread44)', async () => {
    const store = await Store.open(join(await tempDir(t), 's'))
    t.add(async () => { await store.close() })
    await store.put(ref.fragments[0], fragmentOf(ref.fragments[0]), { verified: true })
    // the store's read of fragment 0 is held until the test lets it go
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    let reading!: () => void
    const readStarted = new Promise<void>(resolve => { reading = resolve })
    const get = store.get.bind(store)
    store.get = async (cid, o) => { reading(); await held; return await get(cid, o) }
    const asked: number[][] = []
    const chunks = over(store, async (cids, need) => {
      asked.push(cids.slice(0, need).map(c => ref.fragments.findIndex(f => f.equals(c))))
      const got = new Map<string, Uint8Array>()
      for (const cid of cids.slice(0, need)) got.set(cid.toString(), Uint8Array.from(fragmentOf(cid)))
      return got
    })
    const read = chunks.readChunk(ref)
    await readStarted
    assert.deepEqual(asked, [[1, 2, 3]], 'the three data fragments not here were asked of peers while the one here was still being read')
    release()
    const got = await read
    assert.ok(Buffer.from(got).equals(bytes), 'the chunk is the fragment read here and the three fetched')
    assert.deepEqual(asked, [[1, 2, 3]], 'one fetch, of the fragments not here only')
    assert.equal(chunks.readCounters().rebuilt, 0)
  })
})
