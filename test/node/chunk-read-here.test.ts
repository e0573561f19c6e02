// A chunk read (ChunkService.fetchChunk) reads the fragments held here while it pulls the rest
// from peers (cread44). A fragment here that fails to read (rotted) is made up for by the other
// fragments held here before peers are asked (a local volume's coding, a writer's parity: review44b
// found this lost); a read aborted meanwhile ends at once, leaves nothing unhandled and no second
// pull, and its pull's landing gives no place in its dropped buffer while its disk read still
// runs (review42d's rule, review44b).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { ChunkService, Store, CHUNK_SIZE, encodeChunk } from '../../node/data/index.ts'
import type { Network } from '../../node/data/index.ts'
import { CorruptBlockError } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('chunk read: the fragments held here (ChunkService.fetchChunk)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  const bytes = new Uint8Array(randomBytes(CHUNK_SIZE))
  const encoded = encodeChunk(bytes, 0, 4, 2)
  const ref = encoded.ref
  const fragmentOf = (cid: CID): Uint8Array => encoded.blocks.find(b => b.cid.equals(cid))!.bytes

  describe('chunk read: a fragment here that fails to read', function () {
    const rotted = Uint8Array.from(fragmentOf(ref.fragments[1]))
    rotted[1000] ^= 1

    async function storeWith (held: number[]): Promise<Store> {
      const store = await Store.open(join(await tempDir(t), 's'))
      t.add(async () => { await store.close() })
      for (const i of held) await store.put(ref.fragments[i], i === 1 ? rotted : fragmentOf(ref.fragments[i]), { verified: true })
      return store
    }

    it('no network, all six fragments here, data fragment 1 rotted: rebuilt from the parity here', async () => {
      const store = await storeWith([0, 1, 2, 3, 4, 5])
      const chunks = new ChunkService(store, { localParams: { k: 4, m: 2 }, cacheBytes: 0 })
      const got = await chunks.readChunk(ref)
      assert.ok(Buffer.from(got).equals(bytes))
    })

    it('data 0-3 and parity 4 here, data 1 rotted, peers unreachable: rebuilt from the parity here, nothing asked of peers', async () => {
      const store = await storeWith([0, 1, 2, 3, 4])
      const asked: number[][] = []
      const network = {
        params: () => ({ k: 4, m: 2 }),
        fetch: async (cids: CID[]) => { asked.push(cids.map(c => ref.fragments.findIndex(f => f.equals(c)))); throw new Error('no peer reachable') },
        fetchOne: async () => { throw new Error('no manifest here') },
        place: async () => {}
      } as unknown as Network
      const chunks = new ChunkService(store, { network, cacheBytes: 0 })
      const got = await chunks.readChunk(ref)
      assert.ok(Buffer.from(got).equals(bytes))
      assert.deepEqual(asked, [], 'the parity fragment here was enough')
    })
  })

  describe('chunk read: aborted while its disk read and its pull run', function () {

    for (const how of ['ok', 'corrupt', 'EIO'] as const) {
      it(`the read ends at its abort; the disk read ending afterwards (${how}) leaves no rejection unhandled, no fetch counted running, no second pull`, async () => {
        const store = await Store.open(join(await tempDir(t), 's'))
        t.add(async () => { await store.close() })
        await store.put(ref.fragments[0], fragmentOf(ref.fragments[0]), { verified: true })
        let release!: () => void
        const held = new Promise<void>(resolve => { release = resolve })
        const get = store.get.bind(store)
        store.get = async (cid, o) => {
          await held
          if (how === 'EIO') throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
          if (how === 'corrupt') throw new CorruptBlockError(cid.toString(), 'rotted (test)')
          return await get(cid, o)
        }
        let pulls = 0
        let pullAborted!: () => void
        const aborted = new Promise<void>(resolve => { pullAborted = resolve })
        const network = {
          params: () => ({ k: 4, m: 2 }),
          fetch: async (_cids: CID[], _need: number, opts: { signal?: AbortSignal }) => {
            pulls++
            return await new Promise<Map<string, Uint8Array>>((_resolve, reject) => {
              opts.signal?.addEventListener('abort', () => { pullAborted(); reject(opts.signal!.reason) }, { once: true })
            })
          },
          fetchOne: async () => { throw new Error('no manifest here') },
          place: async () => {}
        } as unknown as Network
        const chunks = new ChunkService(store, { network, cacheBytes: 0 })
        const unhandled: unknown[] = []
        const onUnhandled = (err: unknown): void => { unhandled.push(err) }
        process.on('unhandledRejection', onUnhandled)
        try {
          const ac = new AbortController()
          const read = chunks.readChunk(ref, { signal: ac.signal })
          while (pulls === 0) await new Promise(resolve => setImmediate(resolve))
          ac.abort(new Error('cancelled'))
          await assert.rejects(read, /cancelled/)
          await aborted
          release()
          // the fetch (fetchChunk) settles once its disk read does: let it
          while (chunks.readCounters().fetching > 0) await new Promise(resolve => setImmediate(resolve))
          for (let n = 0; n < 20; n++) await new Promise(resolve => setImmediate(resolve))
          assert.equal(pulls, 1, 'no second pull after the abort')
          assert.deepEqual(unhandled, [])
        } finally {
          process.off('unhandledRejection', onUnhandled)
        }
      })
    }
  })

  describe('chunk read: an aborted read gives out no place while its disk read is still running (review42d)', function () {

    it('aborted while fragment 0 is read here: the land of its pull gives no place afterwards', async () => {
      const store = await Store.open(join(await tempDir(t), 's'))
      t.add(async () => { await store.close() })
      await store.put(ref.fragments[0], fragmentOf(ref.fragments[0]), { verified: true })
      let release!: () => void
      const held = new Promise<void>(resolve => { release = resolve })
      const get = store.get.bind(store)
      store.get = async (cid, o) => { await held; return await get(cid, o) }
      let land: ((cid: CID, bytes: number) => unknown) | undefined
      const ac = new AbortController()
      const network = {
        params: () => ({ k: 4, m: 2 }),
        fetch: async (_cids: CID[], _need: number, opts: { land?: typeof land, signal?: AbortSignal }) => {
          land = opts.land
          ac.abort(new Error('cancelled'))
          opts.signal?.throwIfAborted()
          throw new Error('not aborted?')
        },
        fetchOne: async () => { throw new Error('no manifest here') },
        place: async () => {}
      } as unknown as Network
      const chunks = new ChunkService(store, { network, cacheBytes: 0 })
      try {
        await assert.rejects(chunks.readChunk(ref, { signal: ac.signal }), /cancelled/)
        assert.ok(land !== undefined, 'the pull was given a land')
        const place = land(ref.fragments[1], fragmentOf(ref.fragments[1]).byteLength)
        assert.ok(place === undefined, 'the aborted read\'s buffer is handed out as a place while its disk read runs')
      } finally {
        release()
      }
    })
  })
})
