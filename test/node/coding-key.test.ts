// The key repair, status and the retained set give a chunk (node/keeper/coding.ts): one per
// coding of its bytes. The same 1 MiB at k=4 m=2 and at k=2 m=2 has one chunk CID and two fragment
// sets; keyed by the CID alone, one coding shadowed the other (note-s32 Left 7).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume } from 'darkfs'
import { encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { chunkOfKey, codingKey, codingKeyOf } from '../../node/keeper/coding.ts'
import { retained } from '../../node/keeper/retained.ts'
import { HealthBook, LOST_CONFIRM_MS } from '../../node/keeper/index.ts'
import type { HealthView } from '../../node/keeper/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

// random: a periodic pattern (period 256) made every fragment of a coding the same block
const bytes = new Uint8Array(randomBytes(1 << 20))
const four = encodeChunk(bytes, 0, 4, 2).ref
const two = encodeChunk(bytes, 0, 2, 2).ref
const copies = encodeChunk(bytes, 0, 1, 2).ref
const pair = encodeChunk(bytes, 0, 1, 1).ref

const view = (live: string[], more: Partial<HealthView> = {}): HealthView => ({ self: 'A', live: new Set(live), placing: () => false, pendingHosts: () => 1, offline: false, ...more })

describe('keeper: a chunk keyed by its coding', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('two codings of the same bytes: one CID, two keys; one coding encoded twice: one key', () => {
    assert.equal(four.cid!.toString(), two.cid!.toString())
    const keys = [four, two, copies, pair].map(r => codingKey(r))
    assert.equal(new Set(keys).size, 4, `every coding its own key: ${keys.join(' | ')}`)
    assert.equal(codingKey(encodeChunk(bytes, 0, 4, 2).ref), codingKey(four), 'encoded again: the same key')
    for (const r of [four, two, copies]) assert.equal(chunkOfKey(codingKey(r)), r.cid!.toString())
    for (const r of [four, two]) assert.equal(new Set(r.fragments.map(String)).size, r.fragments.length, 'every fragment of a coding its own block')
    // a placement notice names the chunk and its fragments (not k): the same key
    assert.equal(codingKeyOf(four.cid!.toString(), four.fragments.map(f => f.toString())), codingKey(four))
  })

  it('retained(): two manifests naming two codings of a chunk list two chunks; naming one coding, one', async () => {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    await vol.writeFile('/b', new Uint8Array(20_000).fill(2))
    const { byManifest } = await retained(vol, 3600_000)
    const [ma, mb] = [...byManifest.keys()]
    const both = await retained(vol, 3600_000, { known: new Map<string, ChunkRef[]>([[ma, [four]], [mb, [two]]]) })
    assert.equal(both.chunks.size, 2)
    assert.deepEqual(new Set(both.chunks.values()), new Set([four, two]))
    const one = await retained(vol, 3600_000, { known: new Map<string, ChunkRef[]>([[ma, [four]], [mb, [encodeChunk(bytes, 0, 4, 2).ref]]]) })
    assert.equal(one.chunks.size, 1)
  })

  it('the health book: each coding is seen and counted on its own', () => {
    const book = new HealthBook()
    book.manifest('m4', [four])
    book.manifest('m2', [two])
    book.manifest('m4b', [encodeChunk(bytes, 0, 4, 2).ref])
    const hosts = ['A', 'B', 'C', 'D', 'E', 'F']
    book.observe(four, { held: hosts.map(h => new Set([h])), health: 'redundant' }, false)
    assert.deepEqual(book.unseen(['m4', 'm2', 'm4b']), [two], 'the k=2 coding is not seen yet')
    // the k=2 coding short a fragment
    book.observe(two, { held: [new Set(['A']), new Set(['B']), new Set(['C']), new Set()], health: 'degraded' }, false)
    const s = book.count(['m4', 'm2', 'm4b'], [], view(hosts))
    assert.equal(s.total, 2, 'two codings: two chunks (the k=4 one named twice counts once)')
    assert.equal(s.redundant, 1)
    assert.equal(s.degraded, 1)
    assert.equal(book.liveSeen(two, new Set(hosts)), 3)
    assert.equal(book.liveSeen(four, new Set(hosts)), 6)
    // the listing drops a coding no longer retained, keeps the other
    book.listed(new Map([['m4', [four]]]), () => false)
    assert.equal(book.liveSeen(two, new Set(hosts)), undefined)
    assert.equal(book.liveSeen(four, new Set(hosts)), 6)
  })

  it('the health book: a coding pending here says nothing of another coding of the same bytes (a lost one is lost, not placing)', () => {
    const book = new HealthBook()
    book.manifest('m4', [four])
    book.manifest('m2', [two])
    const hosts = ['A', 'B', 'C', 'D', 'E', 'F']
    // the k=4 coding: three fragments left, every host answered, twice LOST_CONFIRM_MS apart
    const short = { held: [new Set(['B']), new Set(['C']), new Set(['D']), new Set<string>(), new Set<string>(), new Set<string>()], health: 'lost' as const }
    const t0 = Date.now() - LOST_CONFIRM_MS - 1000
    assert.equal(book.observe(four, short, false, t0), 'confirm')
    assert.equal(book.observe(four, short, false, t0 + LOST_CONFIRM_MS), undefined)
    // the k=2 coding written here, being placed
    const s = book.count(['m4', 'm2'], [two], view(hosts, { placing: r => r === two }))
    assert.equal(s.total, 2)
    assert.equal(s.lost, 1, 'the lost k=4 coding')
    assert.equal(s.placing, 1, 'the k=2 coding')
    // offline: the pending one is local only; the lost one is not pending
    const alone = book.count(['m4', 'm2'], [two], view(hosts, { placing: r => r === two, offline: true }))
    assert.equal(alone.localOnly, 1)
    assert.equal(alone.lost, 1)
    // both codings pending, one of them being placed: the other waits (a retry), local only
    const both = book.count([], [four, two], view(hosts, { placing: r => r === two }))
    assert.deepEqual([both.total, both.placing, both.localOnly], [2, 1, 1])
  })
})
