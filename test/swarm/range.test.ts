// Range wants (RANGE_WANT / RANGE): a few leaves of a block with a proof, checked by the
// asker's verifier. The swarm knows no tree, so the holders here serve a toy one: leaves of
// LEAF bytes, and a proof of one hash, the sha256 of the slice (the real Merkle tree is
// node/data/merkle.ts, tested with real hosts in test/cluster/range-read.test.ts).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { getEventListeners } from 'node:events'
import type { Stream } from '@libp2p/interface'
import { BlockNotFoundError, MAX_RANGE_LEAVES, PROTOCOL, PROTOCOL_RANGES, ProtocolError, SwarmStoppedError } from '../../swarm/index.ts'
import type { BlockSource, RangeWant } from '../../swarm/index.ts'
import { FrameDecoder, RANGE, RANGE_WANT, decode, encode } from '../../swarm/protocol.ts'
import { rangeKey } from '../../swarm/client.ts'
import { CID } from 'multiformats/cid'
import { until } from '../../harness/cluster.ts'
import { Net, block, randomBytes } from './net.ts'
import type { TestNode } from './net.ts'

const LEAF = 1024

function sha (b: Uint8Array): Uint8Array { return new Uint8Array(createHash('sha256').update(b).digest()) }

/** The toy tree's range source over a node's store. */
function toyRange (get: () => TestNode): NonNullable<BlockSource['range']> {
  return async (cid, first, end) => {
    const b = get().store.map.get(cid.toString())
    if (b === undefined || first * LEAF >= b.byteLength) return undefined
    const bytes = b.subarray(first * LEAF, Math.min(end * LEAF, b.byteLength))
    return { bytes, proof: [sha(bytes)] }
  }
}

/** A want whose verifier knows the right bytes (as a root would pin them down). */
function want (cid: RangeWant['cid'], bytes: Uint8Array, first: number, end: number): RangeWant {
  const right = bytes.subarray(first * LEAF, Math.min(end * LEAF, bytes.byteLength))
  return {
    cid,
    first,
    end,
    verify: (got, proof) => proof.length === 1 && Buffer.compare(proof[0], sha(got)) === 0 && Buffer.compare(got, right) === 0
  }
}

describe('swarm range wants', function () {
  this.timeout(60_000)
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('fetches leaves of a block from a holder, moving about the leaves, not the block', async () => {
    const a = await net.node()
    let b: TestNode | undefined
    b = await net.node({}, toyRange(() => b!))
    await net.mesh()
    const bytes = randomBytes(256 * 1024, 5)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    const before = a.swarm.stats().bytesReceived
    const got = await a.swarm.pullRange(want(cid, bytes, 3, 5), [b.id])
    assert.deepEqual(got, bytes.subarray(3 * LEAF, 5 * LEAF))
    const moved = a.swarm.stats().bytesReceived - before
    assert.ok(moved >= 2 * LEAF && moved < 2 * LEAF + 1024, `${moved} bytes moved for 2 leaves`)
    // the last, short leaf
    const short = randomBytes(LEAF + 10, 6)
    const cid2 = await block(short)
    b.store.map.set(cid2.toString(), short)
    assert.deepEqual(await a.swarm.pullRange(want(cid2, short, 1, 2), [b.id]), short.subarray(LEAF))
  })

  it('many ranges of two blocks asked of one holder at once each get their own leaves (keyed alike on both ends)', async () => {
    const a = await net.node()
    let b: TestNode | undefined
    b = await net.node({}, toyRange(() => b!))
    await net.mesh()
    const blocks = await Promise.all([7, 8].map(async seed => { const bytes = randomBytes(64 * LEAF, seed); return { bytes, cid: await block(bytes) } }))
    for (const { cid, bytes } of blocks) b.store.map.set(cid.toString(), bytes)
    const asks = blocks.flatMap(({ cid, bytes }) => [[0, 1], [1, 2], [0, 2], [5, 9], [63, 64]].map(([first, end]) => ({ cid, bytes, first, end })))
    const got = await Promise.all(asks.map(async ({ cid, bytes, first, end }) => await a.swarm.pullRange(want(cid, bytes, first, end), [b.id])))
    asks.forEach(({ bytes, first, end }, i) => { assert.deepEqual(got[i], bytes.subarray(first * LEAF, end * LEAF), `leaves [${first}, ${end})`) })
    // the key: one for a CID however often it is decoded, another for another range or CID,
    // never a CID's string (block wants share the map)
    const [x, y] = blocks.map(bl => bl.cid)
    assert.equal(rangeKey(CID.decode(x.bytes), 1, 2), rangeKey(x, 1, 2))
    assert.notEqual(rangeKey(x, 1, 2), rangeKey(x, 1, 3))
    assert.notEqual(rangeKey(x, 11, 2), rangeKey(x, 1, 12))
    assert.notEqual(rangeKey(x, 1, 2), rangeKey(y, 1, 2))
    assert.notEqual(rangeKey(x, 1, 2), x.toString())
  })

  it('moves on from a peer that does not hold the block, or serves no ranges, to one that does', async () => {
    const a = await net.node()
    let empty: TestNode | undefined
    empty = await net.node({}, toyRange(() => empty!))
    const old = await net.node()
    let b: TestNode | undefined
    b = await net.node({}, toyRange(() => b!))
    // an older host: it speaks only PROTOCOL, where a RANGE_WANT would be a protocol violation
    const ancient = await net.bare()
    const seen: number[] = []
    await ancient.handle(PROTOCOL, (stream: Stream) => {
      const frames = new FrameDecoder()
      stream.addEventListener('message', (evt) => { for (const body of frames.push(evt.data)) seen.push(body[0]) })
    })
    await net.mesh()
    await a.libp2p.dial(ancient.getMultiaddrs()[0])
    const bytes = randomBytes(8 * LEAF, 7)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    old.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await a.swarm.pullRange(want(cid, bytes, 0, 1), [ancient.peerId.toString(), empty.id, old.id, b.id]), bytes.subarray(0, LEAF))
    assert.ok(!seen.includes(RANGE_WANT), 'no range want went to the older host')
    assert.equal(a.libp2p.getConnections(ancient.peerId).length, 1, 'and it is still connected')
    // nobody that serves it: BlockNotFoundError naming what each said
    await assert.rejects(a.swarm.pullRange(want(cid, bytes, 0, 1), [empty.id, old.id]), (err: Error) => err instanceof BlockNotFoundError && /does not have leaves \[0, 1\)/.test(err.message))
  })

  it('a source whose range() declines itself (rangeDeclines) is asked range() alone, told the asking peer; its "not held" moves the pull on', async () => {
    const a = await net.node()
    const asked: Array<{ kind: string, peer?: string }> = []
    const declining = (get: () => TestNode): Partial<BlockSource> => ({
      rangeDeclines: true,
      has: async (cid) => { asked.push({ kind: 'has' }); return get().store.map.has(cid.toString()) }
    })
    const counted = (get: () => TestNode): NonNullable<BlockSource['range']> => async (cid, first, end, opts) => {
      asked.push({ kind: 'range', peer: opts?.peer })
      return await toyRange(get)(cid, first, end, opts)
    }
    let empty: TestNode | undefined
    empty = await net.node({}, counted(() => empty!), undefined, declining(() => empty!))
    let b: TestNode | undefined
    b = await net.node({}, counted(() => b!), undefined, declining(() => b!))
    await net.mesh()
    const bytes = randomBytes(8 * LEAF, 9)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await a.swarm.pullRange(want(cid, bytes, 2, 3), [empty.id, b.id]), bytes.subarray(2 * LEAF, 3 * LEAF))
    assert.deepEqual(asked, [{ kind: 'range', peer: a.id }, { kind: 'range', peer: a.id }], 'range() alone, on each holder asked, with the asker named')
    // without the flag has() is still asked first (a source that withholds from some peers there)
    const calls: string[] = []
    let c: TestNode | undefined
    const range = toyRange(() => c!)
    c = await net.node({}, async (cid, first, end) => { calls.push('range'); return await range(cid, first, end) }, undefined, {
      has: async (cid) => { calls.push('has'); return c!.store.map.has(cid.toString()) }
    })
    await net.mesh()
    c.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await a.swarm.pullRange(want(cid, bytes, 4, 5), [c.id]), bytes.subarray(4 * LEAF, 5 * LEAF))
    assert.deepEqual(calls, ['has', 'range'])
  })

  it('a holder that answers after its hedge time is not given up: its answer is taken while the next holder is asked', async () => {
    // Fails on the old code: the request to the first peer asked was cancelled at its hedge time
    // and its late answer dropped, and the pull failed once the second peer's hedge time passed
    // too (a 4 KiB read then rebuilt the whole chunk, issue 15).
    const a = await net.node({ hedgeMs: 200 })
    const bytes = randomBytes(4 * LEAF, 9)
    const cid = await block(bytes)
    // each holder's first range want waits: the first peer asked answers only once the second
    // has been asked (the first's hedge time passed), and the second never answers
    const asked: string[] = []
    const released = Promise.withResolvers<void>()
    const never = Promise.withResolvers<void>()
    const slow = (get: () => TestNode): NonNullable<BlockSource['range']> => {
      const serve = toyRange(get)
      return async (c, first, end) => {
        asked.push(get().id)
        if (asked.length === 1) await released.promise
        else { released.resolve(); await never.promise }
        return await serve(c, first, end)
      }
    }
    let b: TestNode | undefined
    let c: TestNode | undefined
    b = await net.node({}, slow(() => b!))
    c = await net.node({}, slow(() => c!))
    await net.mesh()
    b.store.map.set(cid.toString(), bytes)
    c.store.map.set(cid.toString(), bytes)
    try {
      const got = await a.swarm.pullRange(want(cid, bytes, 1, 2), [b.id, c.id], { lingerMs: 30_000 })
      assert.deepEqual(got, bytes.subarray(LEAF, 2 * LEAF))
      assert.equal(asked.length, 2, 'both holders were asked')
    } finally {
      never.resolve()
    }
    // lingering waits only for requests still out: holders that say "not held" end the pull at once
    let empty: TestNode | undefined
    empty = await net.node({}, toyRange(() => empty!))
    await net.mesh()
    await assert.rejects(a.swarm.pullRange(want(cid, bytes, 0, 1), [empty.id], { lingerMs: 600_000 }), (err: Error) => err instanceof BlockNotFoundError && /does not have leaves \[0, 1\)/.test(err.message))
  })

  it('a pull waiting on a silent holder ends at its caller\'s abort, or the swarm\'s stop, with that reason, and lets the caller\'s signal go', async () => {
    const a = await net.node({ hedgeMs: 60_000 })
    const bytes = randomBytes(4 * LEAF, 11)
    const cid = await block(bytes)
    const never = Promise.withResolvers<void>()
    let asked = 0
    let b: TestNode | undefined
    // two silent holders: a holder serves one range want of a stream at a time, so a second
    // want of b would wait behind the first unasked
    b = await net.node({}, async () => { asked++; await never.promise; return undefined })
    let c: TestNode | undefined
    c = await net.node({}, async () => { asked++; await never.promise; return undefined })
    await net.mesh()
    b.store.map.set(cid.toString(), bytes)
    c.store.map.set(cid.toString(), bytes)
    try {
      const reader = new AbortController()
      const pull = a.swarm.pullRange(want(cid, bytes, 0, 1), [b.id], { signal: reader.signal })
      await until('the holder was asked', () => asked === 1)
      const reason = new Error('the reader gave up')
      reader.abort(reason)
      await assert.rejects(pull, (err: unknown) => err === reason)
      assert.equal(getEventListeners(reader.signal, 'abort').length, 0, 'the caller\'s signal is let go')
      const stopped = a.swarm.pullRange(want(cid, bytes, 1, 2), [c.id])
      await until('the other holder was asked', () => asked === 2)
      await a.swarm.stop()
      await assert.rejects(stopped, (err: unknown) => err instanceof SwarmStoppedError)
    } finally {
      never.resolve()
    }
  })

  it('a peer whose answer fails verification is dropped and the leaves come from another', async () => {
    const a = await net.node()
    let good: TestNode | undefined
    good = await net.node({}, toyRange(() => good!))
    const liar = await net.bare()
    // the liar answers every range want with other bytes and a proof of them
    await liar.handle(PROTOCOL_RANGES, (stream: Stream) => {
      const frames = new FrameDecoder()
      stream.addEventListener('message', (evt) => {
        for (const body of frames.push(evt.data)) {
          const msg = decode(body)
          if (msg.type !== RANGE_WANT) continue
          const lie = randomBytes(LEAF, 99)
          stream.send(encode({ type: RANGE, cid: msg.cid, first: msg.first, end: msg.end, bytes: lie, proof: [sha(lie)] }))
        }
      })
    })
    await net.mesh()
    await a.libp2p.dial(liar.getMultiaddrs()[0])
    const bytes = randomBytes(4 * LEAF, 8)
    const cid = await block(bytes)
    good.store.map.set(cid.toString(), bytes)
    const got = await a.swarm.pullRange(want(cid, bytes, 2, 3), [liar.peerId.toString(), good.id])
    assert.deepEqual(got, bytes.subarray(2 * LEAF, 3 * LEAF))
    assert.equal(a.libp2p.getConnections(liar.peerId).length, 0, 'the liar was disconnected')
  })

  it('encodes and decodes range frames; malformed and oversized ones are protocol errors', async () => {
    const cid = await block(randomBytes(10, 1))
    const proof = [sha(Uint8Array.of(1)), sha(Uint8Array.of(2))]
    const bytes = randomBytes(3000, 2)
    // a message's body, as the receiving side's FrameDecoder hands it to decode()
    const frame = (m: Parameters<typeof encode>[0]): Uint8Array => new FrameDecoder().push(encode(m))[0]
    assert.deepEqual(decode(frame({ type: RANGE_WANT, cid, first: 3, end: 7 })), { type: RANGE_WANT, cid, first: 3, end: 7 })
    const ans = decode(frame({ type: RANGE, cid, first: 3, end: 4, bytes, proof }))
    assert.ok(ans.type === RANGE)
    assert.deepEqual(ans.proof?.map(p => Uint8Array.from(p)), proof)
    assert.deepEqual(Uint8Array.from(ans.bytes!), bytes)
    assert.deepEqual(decode(frame({ type: RANGE, cid, first: 3, end: 4 })), { type: RANGE, cid, first: 3, end: 4 })
    // the encoder refuses what the decoder would
    assert.throws(() => encode({ type: RANGE_WANT, cid, first: 0, end: MAX_RANGE_LEAVES + 1 }), RangeError)
    assert.throws(() => encode({ type: RANGE_WANT, cid, first: 5, end: 5 }), RangeError)
    assert.throws(() => encode({ type: RANGE, cid, first: 0, end: 1, bytes, proof: [Uint8Array.of(1)] }), RangeError)
    const c = cid.bytes
    const bad: Array<[string, number[]]> = [
      ['an empty range', [RANGE_WANT, c.length, ...c, 5, 5]],
      ['a range over MAX_RANGE_LEAVES', [RANGE_WANT, c.length, ...c, 0, MAX_RANGE_LEAVES + 1]],
      ['bytes after a range want', [RANGE_WANT, c.length, ...c, 0, 1, 0]],
      ['an unknown status', [RANGE, c.length, ...c, 0, 1, 2]],
      ['too many proof hashes', [RANGE, c.length, ...c, 0, 1, 0, 65]],
      ['a truncated proof hash', [RANGE, c.length, ...c, 0, 1, 0, 1, ...new Array(31).fill(7)]],
      ['bytes after "not held"', [RANGE, c.length, ...c, 0, 1, 1, 9]]
    ]
    for (const [what, body] of bad) {
      assert.throws(() => decode(Uint8Array.from(body)), (err: Error) => err instanceof ProtocolError, what)
    }
  })
})
