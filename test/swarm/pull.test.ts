import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { BlockNotFoundError } from '../../swarm/index.ts'
import { Net, block, chunkOn, randomBytes } from './net.ts'

describe('swarm.pull', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('swarm.pull(cid, [holder]) fetches and verifies one block', async () => {
    const a = await net.node()
    const b = await net.node()
    await net.mesh()
    const bytes = randomBytes(300_000, 7)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    const got = await a.swarm.pull(cid, [b.id])
    assert.deepEqual(got, bytes)
    assert.ok(a.swarm.stats().bytesReceived >= bytes.byteLength)
    assert.ok(b.swarm.stats().peers[a.id].sent >= bytes.byteLength)
  })

  it('swarm.pull(cid, from) skips holders that lack the block', async () => {
    const [a, b, c, d] = [await net.node(), await net.node(), await net.node(), await net.node()]
    await net.mesh()
    const bytes = randomBytes(10_000, 3)
    const cid = await block(bytes)
    d.store.map.set(cid.toString(), bytes)
    const got = await a.swarm.pull(cid, [b.id, c.id, d.id])
    assert.deepEqual(got, bytes)
  })

  it('swarm.pull(cid, from) rejects with BlockNotFoundError when nobody has it', async () => {
    const [a, b] = [await net.node(), await net.node()]
    await net.mesh()
    const cid = await block(randomBytes(100, 9))
    await assert.rejects(a.swarm.pull(cid, [b.id]), (err: Error) => err.name === BlockNotFoundError.name)
    await assert.rejects(a.swarm.pull(cid, []), (err: Error) => err.name === BlockNotFoundError.name)
  })

  it('swarm.pullAny(cids, n, from) fetches many blocks from several holders at once', async () => {
    const a = await net.node()
    const holders = [await net.node(), await net.node(), await net.node(), await net.node()]
    await net.mesh()
    const blocks = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const bytes = randomBytes(50_000, 100 + i)
      return { bytes, cid: await block(bytes) }
    }))
    for (const h of holders) for (const b of blocks) h.store.map.set(b.cid.toString(), b.bytes)
    const got = await a.swarm.pullAny(blocks.map(b => b.cid), blocks.length, holders.map(h => h.id))
    assert.equal(got.size, blocks.length)
    for (const b of blocks) assert.deepEqual(got.get(b.cid.toString()), b.bytes)
    const stats = a.swarm.stats()
    const servedBy = holders.filter(h => (stats.peers[h.id]?.received ?? 0) >= 50_000)
    assert.ok(servedBy.length >= 2, `blocks came from ${servedBy.length} holder(s), expected several`)
  })

  it('swarm.pullAny(fragments, k, holdersByCid) gets k of k+m with some holders missing blocks', async () => {
    const a = await net.node()
    const holders = [await net.node(), await net.node(), await net.node(), await net.node(), await net.node(), await net.node()]
    await net.mesh()
    // 4 data + 2 parity fragments, fragment j on holder j; holders 1 and 3 lost theirs
    const frags = await Promise.all(Array.from({ length: 6 }, async (_, j) => {
      const bytes = randomBytes(64 * 1024, 200 + j)
      return { bytes, cid: await block(bytes) }
    }))
    const from = new Map<string, string[]>()
    frags.forEach((f, j) => {
      if (j !== 1 && j !== 3) holders[j].store.map.set(f.cid.toString(), f.bytes)
      from.set(f.cid.toString(), [holders[j].id])
    })
    const got = await a.swarm.pullAny(frags.map(f => f.cid), 4, from)
    assert.deepEqual([...got.keys()].sort(), [0, 2, 4, 5].map(j => frags[j].cid.toString()).sort())
    for (const [key, bytes] of got) assert.deepEqual(bytes, frags.find(f => f.cid.toString() === key)?.bytes)
  })

  it('swarm.pullAny(cids, k, from) prefers the earlier CIDs and fetches no more than it needs', async () => {
    const [a, b] = [await net.node(), await net.node()]
    await net.mesh()
    const frags = await Promise.all(Array.from({ length: 6 }, async (_, j) => {
      const bytes = randomBytes(100_000, 300 + j)
      return { bytes, cid: await block(bytes) }
    }))
    for (const f of frags) b.store.map.set(f.cid.toString(), f.bytes)
    const got = await a.swarm.pullAny(frags.map(f => f.cid), 4, [b.id])
    assert.deepEqual([...got.keys()].sort(), frags.slice(0, 4).map(f => f.cid.toString()).sort())
    assert.ok(a.swarm.stats().bytesReceived < 5 * 100_000, 'parity fragments were not fetched')
  })

  it('swarm.pullAny(fragments, 3, holdersByCid) from three chunks at once asks different holders: the third avoids those the first two keep busy', async () => {
    const a = await net.node()
    const holders = await Promise.all(Array.from({ length: 6 }, async () => await net.node()))
    await net.mesh()
    // three chunks, fragment j of each on holder j; each holder counts the blocks it serves
    const served = holders.map(() => 0)
    holders.forEach((h, i) => { const get = h.store.get; h.store.get = async (cid) => { served[i]++; return await get(cid) } })
    const [x, y, z] = [await chunkOn(holders, 400), await chunkOn(holders, 500), await chunkOn(holders, 600)]
    const got = await Promise.all([x, y, z].map(async c => await a.swarm.pullAny(c.cids, 3, c.from)))
    assert.equal(got.reduce((n, g) => n + g.size, 0), 9)
    // the first takes fragments 0-2 (holders 0-2); the second too (one block queued on each is
    // not enough to leave the data fragments: PREFER_FACTOR); the third, seeing two queued on
    // each of them and none on holders 3-5, takes 3-5
    assert.deepEqual(served, [2, 2, 2, 1, 1, 1], `blocks served per holder: ${served.join(', ')}`)
  })

  it('swarm.pullAny(fragments, 4, holdersByCid) of two chunks at once takes the data fragments of both, not the idle parity holders\' (no decode)', async () => {
    const a = await net.node()
    const holders = await Promise.all(Array.from({ length: 6 }, async () => await net.node()))
    await net.mesh()
    const served = holders.map(() => 0)
    holders.forEach((h, i) => { const get = h.store.get; h.store.get = async (cid) => { served[i]++; return await get(cid) } })
    const [x, y] = [await chunkOn(holders, 700), await chunkOn(holders, 800)]
    const [gx, gy] = await Promise.all([x, y].map(async c => await a.swarm.pullAny(c.cids, 4, c.from)))
    // the second chunk's data holders each have one block queued, its parity holders none:
    // about as available, so the data fragments are taken (the old rule took both parity)
    assert.deepEqual([...gx.keys()].sort(), x.cids.slice(0, 4).map(c => c.toString()).sort())
    assert.deepEqual([...gy.keys()].sort(), y.cids.slice(0, 4).map(c => c.toString()).sort())
    assert.deepEqual(served, [2, 2, 2, 2, 0, 0], `blocks served per holder: ${served.join(', ')}`)
  })

  it('swarm.pullAny(fragments, 3, holdersByCid, { ordered }) of three chunks at once takes the data fragments of all three: a less loaded parity holder is no reason to decode', async () => {
    // Fails without `ordered` (the same pulls spread by load): the third chunk took the idle
    // parity holders 3-5, so the reader decoded it although every data fragment was there
    const a = await net.node()
    const holders = await Promise.all(Array.from({ length: 6 }, async () => await net.node()))
    await net.mesh()
    const served = holders.map(() => 0)
    holders.forEach((h, i) => { const get = h.store.get; h.store.get = async (cid) => { served[i]++; return await get(cid) } })
    const chunks = [await chunkOn(holders, 900), await chunkOn(holders, 1000), await chunkOn(holders, 1100)]
    const got = await Promise.all(chunks.map(async c => await a.swarm.pullAny(c.cids, 3, c.from, { ordered: true })))
    got.forEach((g, i) => { assert.deepEqual([...g.keys()].sort(), chunks[i].cids.slice(0, 3).map(c => c.toString()).sort(), `chunk ${i} took its first three blocks`) })
    assert.deepEqual(served, [3, 3, 3, 0, 0, 0], `blocks served per holder: ${served.join(', ')}`)
    assert.equal(a.swarm.stats().hedged, 0)
  })

  it('swarm.pullAny(fragments, 2, holdersByCid, { ordered }) asks a later block only for an earlier one past its hedge time or not held, not for one whose holder is busier', async () => {
    // Fails with `ordered` ignored: block 0's holder has two requests of ours queued (expected
    // 3 x as long as an idle one: PREFER_FACTOR), so an unordered pull takes block 2 up front
    // and never asks block 0
    const a = await net.node({ hedgeMs: 100 })
    const holders = await Promise.all(Array.from({ length: 4 }, async () => await net.node()))
    await net.mesh()
    // holder 0 is silent (serves nothing until the end) and records the blocks it is asked
    const asked: string[] = []
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const { has, get } = holders[0].store
    holders[0].store.has = async (cid, ...rest) => { asked.push(cid.toString()); return await has(cid, ...rest) }
    holders[0].store.get = async (cid) => { await gate; return await get(cid) }
    const busy = new AbortController()
    try {
      const queued = await Promise.all([0, 1].map(async j => { const bytes = randomBytes(1000, 1250 + j); const c = await block(bytes); holders[0].store.map.set(c.toString(), bytes); return c }))
      const waiting = queued.map(async c => await a.swarm.pull(c, [holders[0].id], { signal: busy.signal }).catch(() => undefined))
      const cids: CID[] = []
      const from = new Map<string, string[]>()
      for (let j = 0; j < 4; j++) {
        const bytes = randomBytes(64 * 1024, 1200 + j)
        const c = await block(bytes)
        // block 1 is held by no one: its holder answers DONT_HAVE
        if (j !== 1) holders[j].store.map.set(c.toString(), bytes)
        cids.push(c)
        from.set(c.toString(), [holders[j].id])
      }
      const got = await a.swarm.pullAny(cids, 2, from, { ordered: true })
      // block 0 asked of its busy holder anyway, then past its hedge time block 2 taken; block 1
      // not held (block 3 taken)
      assert.ok(asked.includes(cids[0].toString()), 'block 0 was asked of its holder')
      assert.deepEqual([...got.keys()].sort(), [cids[2], cids[3]].map(c => c.toString()).sort())
      busy.abort()
      await Promise.all(waiting)
    } finally {
      busy.abort()
      release()
    }
  })

  it('swarm.pullAny(fragments, 2, holdersByCid, { ordered }) passes over a data block up front when its holder is known to be ORDERED_SLOW_FACTOR times slower per block (and by MIN_HEDGE_MS)', async () => {
    const holders = await Promise.all(Array.from({ length: 3 }, async () => await net.node()))
    // holder 0's uplink is known to be thin (as a host's --uplink is announced): 256 KiB in ~2.6 s,
    // where the others' is unknown until measured
    const a = await net.node({ uplink: new Map([[holders[0].id, 100_000]]) })
    await net.mesh()
    const [x, y] = await Promise.all([0, 1].map(async j => { const bytes = randomBytes(64 * 1024, 1300 + j); return { bytes, cid: await block(bytes) } }))
    // warm: holder 2's speed measured (a block of its own), so the parity holder is known fast
    const warm = randomBytes(64 * 1024, 1310)
    const wc = await block(warm)
    holders[2].store.map.set(wc.toString(), warm)
    await a.swarm.pull(wc, [holders[2].id])
    holders[0].store.map.set(x.cid.toString(), x.bytes)
    holders[1].store.map.set(y.cid.toString(), y.bytes)
    const pBytes = randomBytes(64 * 1024, 1302)
    const p = { bytes: pBytes, cid: await block(pBytes) }
    holders[2].store.map.set(p.cid.toString(), p.bytes)
    const from = new Map([[x.cid.toString(), [holders[0].id]], [y.cid.toString(), [holders[1].id]], [p.cid.toString(), [holders[2].id]]])
    const got = await a.swarm.pullAny([x.cid, y.cid, p.cid], 2, from, { ordered: true })
    assert.deepEqual([...got.keys()].sort(), [y.cid, p.cid].map(c => c.toString()).sort())
    // passed over twice: for block 1, then for the parity block
    assert.equal(a.swarm.stats().passedOver, 2)
    assert.equal(a.swarm.stats().hedged, 0, 'taken up front, not after a hedge')
  })

  it('swarm.pull(cid) returns a block already held locally without asking anyone', async () => {
    const a = await net.node()
    const bytes = randomBytes(1000, 5)
    const cid = await block(bytes)
    a.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await a.swarm.pull(cid, ['12D3KooWNoSuchPeerNoSuchPeerNoSuchPeerNoSuchPeer1']), bytes)
  })

  it('swarm.pull(cid, from, { signal }) rejects when aborted', async () => {
    const [a, b] = [await net.node(), await net.node()]
    await net.mesh()
    const cid = await block(randomBytes(100, 11))
    const ctl = new AbortController()
    ctl.abort(new Error('caller gave up'))
    await assert.rejects(a.swarm.pull(cid, [b.id], { signal: ctl.signal }), /caller gave up/)
  })

  it('swarm.pullAny over loopback TCP moves 1 MiB blocks through stream backpressure', async () => {
    const tcpNet = new Net('tcp')
    try {
      const a = await tcpNet.node()
      const b = await tcpNet.node()
      await tcpNet.mesh()
      const blocks = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
        const bytes = randomBytes(1024 * 1024, 500 + i)
        return { bytes, cid: await block(bytes) }
      }))
      for (const x of blocks) b.store.map.set(x.cid.toString(), x.bytes)
      const got = await a.swarm.pullAny(blocks.map(x => x.cid), blocks.length, [b.id])
      for (const x of blocks) assert.deepEqual(got.get(x.cid.toString()), x.bytes)
    } finally {
      await tcpNet.stop()
    }
  })

  it('swarm.pull(cid, [slow, fast]) re-asks elsewhere when the first holder is slow', async () => {
    const a = await net.node({ hedgeMs: 100 })
    const slow = await net.node({ maxUploadBytesPerSecond: 4 * 1024 })
    const fast = await net.node()
    await net.mesh()
    const bytes = randomBytes(256 * 1024, 77)
    const cid = await block(bytes)
    slow.store.map.set(cid.toString(), bytes)
    fast.store.map.set(cid.toString(), bytes)
    // at 4 KiB/s the slow holder would need a minute; the hedge fetches it from the fast one
    const got = await a.swarm.pull(cid, [slow.id, fast.id])
    assert.deepEqual(got, bytes)
    assert.ok((a.swarm.stats().peers[fast.id]?.received ?? 0) >= bytes.byteLength)
  })

  it('swarm.pullAny(cids, 1, holdersByCid) does not hedge to a spare while the first holder is still sending', async () => {
    const a = await net.node({ hedgeMs: 300 })
    // about 0.75 s for the block: past the hedge time, within its patience (PATIENCE_ROUNDS more)
    const busy = await net.node({ maxUploadBytesPerSecond: 256 * 1024 })
    const spare = await net.node()
    await net.mesh()
    const first = randomBytes(256 * 1024, 601)
    const second = randomBytes(256 * 1024, 602)
    const [c1, c2] = [await block(first), await block(second)]
    busy.store.map.set(c1.toString(), first)
    spare.store.map.set(c2.toString(), second)
    let spareServed = 0
    const get = spare.store.get
    spare.store.get = async (cid) => { spareServed++; return await get(cid) }
    const got = await a.swarm.pullAny([c1, c2], 1, new Map([[c1.toString(), [busy.id]], [c2.toString(), [spare.id]]]))
    assert.deepEqual([...got.keys()], [c1.toString()])
    assert.equal(spareServed, 0, 'the spare was fetched while the first block was arriving')
  })

  it('swarm.pullAny(cids, 1, holdersByCid, { ordered }) waits on a holder still sending past its hedge time (patience), not hedging to the spare', async () => {
    const a = await net.node({ hedgeMs: 300 })
    // about 1 s for the block: past the hedge time, within its patience and ORDERED_MAX_WAIT_MS
    const busy = await net.node({ maxUploadBytesPerSecond: 256 * 1024 })
    const spare = await net.node()
    await net.mesh()
    const first = randomBytes(256 * 1024, 611)
    const second = randomBytes(256 * 1024, 612)
    const [c1, c2] = [await block(first), await block(second)]
    busy.store.map.set(c1.toString(), first)
    spare.store.map.set(c2.toString(), second)
    const got = await a.swarm.pullAny([c1, c2], 1, new Map([[c1.toString(), [busy.id]], [c2.toString(), [spare.id]]]), { ordered: true })
    assert.deepEqual([...got.keys()], [c1.toString()])
    assert.equal(a.swarm.stats().hedged, 0, 'hedged while the block was arriving')
  })

  it('swarm.pullAny(cids, 1, holdersByCid, { ordered }) hedges to the spare once a holder still sending is past ORDERED_MAX_WAIT_MS, its patience rounds left', async () => {
    // Failed before (hedged 0, the slow block taken): hedge time 2 s and 3 patience rounds, so
    // the holder still sending was waited on up to 8 s; its block takes ~6.4 s (40 KiB/s); an
    // ordered pull now asks the spare at ORDERED_MAX_WAIT_MS (5 s) at the latest
    const a = await net.node({ hedgeMs: 2000 })
    const busy = await net.node({ maxUploadBytesPerSecond: 40 * 1024 })
    const spare = await net.node()
    await net.mesh()
    const first = randomBytes(256 * 1024, 621)
    const second = randomBytes(64 * 1024, 622)
    const [c1, c2] = [await block(first), await block(second)]
    busy.store.map.set(c1.toString(), first)
    spare.store.map.set(c2.toString(), second)
    const got = await a.swarm.pullAny([c1, c2], 1, new Map([[c1.toString(), [busy.id]], [c2.toString(), [spare.id]]]), { ordered: true })
    assert.deepEqual([...got.keys()], [c2.toString()])
    assert.equal(a.swarm.stats().hedged, 1)
  })
})

