// A chunk released by its own write (rewritten or truncated) right after chunk() returned, its
// local put still in flight: release() waits for the chunk's placement run, and the run waited
// for the release to be over (another write's give-up of the same fragments is waited for, so
// the run waited for its own): the write's placed(), fsync and close hung for ever (review31g).
// The write ending at all is the check (mocha's timeout fails a hang).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { seededBytes } from '../../harness/prng.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('ChunkWrite.release() of a chunk just stored', function () {
  this.timeout(20_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the release and the write end; the released chunk is not placed', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const placed: string[] = []
    const network: Network = {
      params: () => ({ k: 4, m: 2 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs) => { for (const r of refs) placed.push(r.cid!.toString()) },
      abandon: async () => {}
    }
    const chunks = new ChunkService(store, { network })
    const w = chunks.write({})
    const ref: ChunkRef = await w.chunk(seededBytes(1 << 20, 1), 0)
    w.release(ref) // rewritten at once (its put may still be in flight)
    const kept: ChunkRef = await w.chunk(seededBytes(1 << 20, 2), 1 << 20)
    await w.placed()
    assert.ok(placed.includes(kept.cid!.toString()), 'the chunk written after it placed')
    assert.ok(!placed.includes(ref.cid!.toString()), 'the released chunk not placed')
  })
})
