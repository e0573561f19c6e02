// The walks a release request answers from (node/keeper/retained-walk.ts) and the keeper-wide
// cache of manifests' chunks (retained.ts ManifestRefs): a walk is reused only while the tree took
// no op since it began (a version committed after it is seen: its blocks are never released),
// callers at one tree state share one walk in flight, and the cache keeps to its bounds.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import type { CID } from 'multiformats/cid'
import { ManifestRefs, refHeapBytes, retained } from '../../node/keeper/retained.ts'
import type { Retained } from '../../node/keeper/retained.ts'
import { RetainedWalks } from '../../node/keeper/retained-walk.ts'
import { Release } from '../../node/keeper/release.ts'
import type { ReleaseComponents } from '../../node/keeper/release.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const HOUR = 3600_000

/** Every block a retained set names (its manifests, every fragment of its chunks). */
function blocksOf (r: Retained): CID[] {
  const out: CID[] = [...r.manifests.values()]
  for (const ref of r.chunks.values()) out.push(...ref.fragments)
  return out
}

describe('retained walks shared by release requests', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function volume (): Promise<Volume> {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    return vol
  }

  it('a release after a commit sees the new version: none of its blocks is deleted', async () => {
    const vol = await volume()
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    const deleted: string[] = []
    const c: ReleaseComponents = {
      host: { peerId: 'self' } as unknown as ReleaseComponents['host'],
      // every block held until deleted and none claimed: only the retained set keeps one
      store: {
        has: async (cid: CID) => !deleted.includes(cid.toString()),
        delete: async (cid: CID) => { deleted.push(cid.toString()) },
        isClaimed: () => false
      } as unknown as ReleaseComponents['store'],
      volume: vol,
      promised: () => false,
      retentionMs: HOUR
    }
    const release = new Release(c)
    const before = await retained(vol, HOUR, { refs: new ManifestRefs() })
    // the walk is made and kept: a second request with no op between reuses it
    assert.equal((await release.drop([])).size, 0)
    assert.equal((await release.referenced(blocksOf(before))).size, blocksOf(before).length)
    assert.equal(release.walks.walks, 1, 'one walk for two requests at one tree state')

    await vol.writeFile('/b', new Uint8Array(20_000).fill(2))
    const after = await retained(vol, HOUR, { refs: new ManifestRefs() })
    const had = new Set(blocksOf(before).map(c => c.toString()))
    const fresh = blocksOf(after).filter(c => !had.has(c.toString()))
    assert.ok(fresh.length >= 2, 'the new version has a manifest and chunk fragments')
    const gone = await release.drop(fresh)
    assert.equal(gone.size, 0, 'no block of the version committed after the walk is released')
    assert.deepEqual(deleted, [])
    assert.equal(release.walks.walks, 2, 'the op since the kept walk made a new one')
    assert.equal((await release.referenced(fresh)).size, fresh.length)
    // the harness deletes what nothing names: the check above is not vacuous
    const { CID: Cid } = await import('multiformats/cid')
    const { sha256 } = await import('multiformats/hashes/sha2')
    const stray = Cid.createV1(0x55, await sha256.digest(new Uint8Array([7, 7, 7])))
    assert.deepEqual([...await release.drop([stray])], [stray.toString()])
    assert.deepEqual(deleted, [stray.toString()])
  })

  it('callers at one tree state share the walk in flight; a caller after an op walks again', async () => {
    const vol = await volume()
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    const gates: Array<() => void> = []
    const walk: typeof retained = async (v, ms, opts) => {
      // the contents listed at the call (as retained() does), the answer held until released
      const listing = retained(v, ms, { ...opts, refs: new ManifestRefs() })
      await new Promise<void>(resolve => { gates.push(resolve) })
      return await listing
    }
    const walks = new RetainedWalks(vol, HOUR, walk)
    const first = walks.get()
    const second = walks.get()
    // one caller gives up: the walk goes on for the other
    const ac = new AbortController()
    const third = walks.get({ signal: ac.signal })
    ac.abort(new Error('gave up'))
    await assert.rejects(third, /gave up/)
    assert.equal(walks.walks, 1)
    // an op lands while the walk is in flight: a caller now does not join it
    await vol.writeFile('/b', new Uint8Array(20_000).fill(2))
    const fourth = walks.get()
    assert.equal(walks.walks, 2)
    for (const g of gates.splice(0)) g()
    const [r1, r2, r4] = await Promise.all([first, second, fourth])
    assert.equal(r1, r2, 'the two callers got the one walk')
    assert.equal(r1.manifests.size, 1)
    assert.equal(r4.manifests.size, 2, 'the later caller sees the version committed before its call')
    // kept: the next caller at this state walks no more
    assert.equal(await walks.get(), r4)
    assert.equal(walks.walks, 2)
  })

  it('a walk every caller gave up on is aborted, and not joined afterwards', async () => {
    const vol = await volume()
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    const signals: AbortSignal[] = []
    const walk: typeof retained = async (v, ms, opts) => {
      signals.push(opts!.signal!)
      if (signals.length === 1) {
        await new Promise<void>((_resolve, reject) => { opts!.signal!.addEventListener('abort', () => { reject(opts!.signal!.reason) }) })
      }
      return await retained(v, ms, opts)
    }
    const walks = new RetainedWalks(vol, HOUR, walk)
    const ac = new AbortController()
    const gaveUp = walks.get({ signal: ac.signal })
    ac.abort(new Error('gave up'))
    await assert.rejects(gaveUp, /gave up/)
    assert.equal(signals[0].aborted, true, 'the walk nobody waits for is aborted')
    const r = await walks.get()
    assert.equal(walks.walks, 2)
    assert.equal(r.manifests.size, 1)
  })

  it('a walk with an unreadable manifest is not reused', async () => {
    const vol = await volume()
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    let fail = true
    const readManifest = vol.chunks.readManifest.bind(vol.chunks)
    vol.chunks.readManifest = async (cid, opts) => {
      if (fail) throw new Error('unreadable here')
      return await readManifest(cid, opts)
    }
    const walks = new RetainedWalks(vol, HOUR, async (v, ms, opts) => await retained(v, ms, { ...opts, refs: new ManifestRefs() }))
    assert.equal((await walks.get()).unreadable, 1)
    fail = false
    assert.equal((await walks.get()).unreadable, 0)
    assert.equal(walks.walks, 2)
  })

  // a full cache evicting its least recently used would, under walks that visit manifests in one
  // order, evict the next one needed each time and hit nothing (review32g): full, it keeps what it has
  it('the manifest cache is bounded by manifests and by the heap of its refs: full, it keeps what it holds; prune() makes room', () => {
    const refs = (n: number, fragments = 6): ChunkRef[] => Array.from({ length: n }, () => ({ fragments: new Array(fragments) }) as unknown as ChunkRef)
    const byEntries = new ManifestRefs({ maxEntries: 2 })
    byEntries.set('a', refs(1))
    byEntries.set('b', refs(1))
    byEntries.set('c', refs(1))
    assert.equal(byEntries.size, 2)
    assert.equal(byEntries.get('c'), undefined, 'full: the new one is not kept')
    assert.ok(byEntries.get('a') !== undefined && byEntries.get('b') !== undefined)
    byEntries.prune(new Map([['b', 1], ['c', 1]]))
    assert.equal(byEntries.get('a'), undefined, 'pruned: retained no more')
    byEntries.set('c', refs(1))
    assert.ok(byEntries.get('c') !== undefined, 'room again after the prune')

    // a ref's estimate grows with its fragments: a 4 + 2 ref costs more than a replicated one
    const coded = refHeapBytes(refs(1, 6)[0])
    const copies = refHeapBytes(refs(1, 3)[0])
    assert.ok(coded > copies && copies > 0)
    const byBytes = new ManifestRefs({ maxEntries: 100, maxBytes: 10 * coded })
    byBytes.set('a', refs(4))
    byBytes.set('b', refs(4))
    assert.equal(byBytes.bytes, 8 * coded)
    byBytes.set('c', refs(4))
    assert.equal(byBytes.get('c'), undefined, 'over the bound: the new one is not kept')
    assert.deepEqual([byBytes.size, byBytes.chunkCount, byBytes.bytes], [2, 8, 8 * coded], 'full: what it held is kept')
    // what still fits does: replicated refs cost less than coded ones
    const fit = Math.floor(2 * coded / copies)
    byBytes.set('small', refs(fit, 3))
    assert.ok(byBytes.get('small') !== undefined)
    assert.equal(byBytes.bytes, 8 * coded + fit * copies)
    assert.ok(byBytes.bytes <= byBytes.maxBytes)
    byBytes.set('big', refs(11))
    assert.equal(byBytes.get('big'), undefined, 'a manifest over the bound alone is not kept')
    // set again under the same key: counted once
    byBytes.set('a', refs(4))
    assert.equal(byBytes.bytes, 8 * coded + fit * copies)
    byBytes.prune(new Map([['b', 1], ['c', 1]]))
    assert.deepEqual([byBytes.size, byBytes.chunkCount, byBytes.bytes], [1, 4, 4 * coded], 'prune frees what it held')
    byBytes.set('c', refs(4))
    assert.ok(byBytes.get('c') !== undefined, 'room again after the prune')
    assert.equal(byBytes.bytes, 8 * coded)
  })

  // the same chunk bytes in two files written at different k (the network's size changed between)
  // carry two fragment sets: only one ref per chunk CID was protected (review32g)
  it('a release keeps every coding of a chunk two retained versions name', async () => {
    const vol = await volume()
    const bytes = new Uint8Array(1 << 20).fill(7)
    const { encodeChunk } = await import('../../node/data/chunks.ts')
    const three = await encodeChunk(bytes, 0, 3, 2)
    const four = await encodeChunk(bytes, 0, 4, 2)
    assert.equal(three.ref.cid!.toString(), four.ref.cid!.toString(), 'one chunk, two codings')
    const r: Retained = {
      manifests: new Map(),
      chunks: new Map([[three.ref.cid!.toString(), three.ref]]),
      unreadable: 0,
      byManifest: new Map([['m3', [three.ref]], ['m4', [four.ref]]]),
      missing: new Set()
    }
    const deleted: string[] = []
    const store = { has: async () => true, delete: async (cid: CID) => { deleted.push(cid.toString()) }, isClaimed: () => false }
    const release = new Release({ host: {} as any, volume: vol, store, promised: () => false, retentionMs: HOUR } as unknown as ReleaseComponents)
    ;(release as any).walks = { get: async () => r }
    const gone = await release.drop([...three.ref.fragments, ...four.ref.fragments])
    assert.equal(gone.size, 0, `no fragment of either coding released: ${[...gone].join(', ')}`)
    assert.deepEqual(deleted, [])
  })

  it('retained() fills the shared cache and reads a manifest once', async () => {
    const vol = await volume()
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    const reads: string[] = []
    const readManifest = vol.chunks.readManifest.bind(vol.chunks)
    vol.chunks.readManifest = async (cid, opts) => { reads.push(cid.toString()); return await readManifest(cid, opts) }
    const cache = new ManifestRefs()
    const one = await retained(vol, HOUR, { refs: cache })
    const two = await retained(vol, HOUR, { refs: cache })
    assert.equal(reads.length, 1)
    assert.equal(cache.size, 1)
    assert.deepEqual([...two.chunks.keys()], [...one.chunks.keys()])
  })
})
