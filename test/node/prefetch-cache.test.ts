// ChunkService.prefetch() (a whole version read: the API's ?version=, a conflict's resolve) warms
// only the chunk cache, so its window must fit in the cache's bound (`--cache`): a window past it
// evicts its own chunks before the reader comes to them, and every chunk is read again (8-10
// fragment reads per chunk at --cache 0 before the window was bounded by the cache).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ChunkService, Store, CHUNK_SIZE } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const MiB = 1 << 20
const CHUNKS = 24
const K = 2

describe('ChunkService.prefetch: a window within the cache', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  for (const cacheBytes of [0, 4 * MiB, 16 * MiB, 128 * MiB]) {
    it(`cache of ${cacheBytes / MiB} MiB: a whole-version read of ${CHUNKS} chunks reads each chunk's ${K} fragments once`, async () => {
      const store = await Store.open(join(await tempDir(t), 's'))
      t.add(async () => { await store.close() })
      const writer = new ChunkService(store, { localParams: { k: K, m: 1 }, cacheBytes: 0 })
      const refs: ChunkRef[] = []
      for (let i = 0; i < CHUNKS; i++) refs.push((await writer.storeChunk(new Uint8Array(CHUNK_SIZE).fill(i + 1), i * CHUNK_SIZE)).ref)
      const chunks = new ChunkService(store, { localParams: { k: K, m: 1 }, cacheBytes })
      let gets = 0
      const get = store.get.bind(store)
      store.get = (async (...a: Parameters<Store['get']>) => { gets++; return await get(...a) }) as Store['get']
      // readContent's loop: the window after this chunk, then this chunk
      for (let i = 0; i < refs.length; i++) {
        chunks.prefetch(refs, i + 1, {})
        const bytes = await chunks.readChunk(refs[i])
        assert.equal(bytes[0], i + 1)
        assert.equal(bytes[CHUNK_SIZE - 1], i + 1)
      }
      assert.equal(gets, CHUNKS * K, `${gets} fragment reads for ${CHUNKS} chunks of k=${K}`)
    })
  }
})
