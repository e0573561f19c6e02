// OpHold (node/net/op-hold.ts): an fsync's wait for a peer to hold this host's newest op. One ask
// runs at a time, for the newest op committed; every wait the ask covers ends with it; the same op
// asked for again (a directory's fsync after its file's) is covered by the ask for it.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { OpHold } from '../../node/net/op-hold.ts'

async function cid (n: number): Promise<CID> {
  return CID.createV1(0x71, await sha256.digest(new TextEncoder().encode(`op ${n}`)))
}

interface Ask { cid: CID, peers: readonly string[], op?: Uint8Array, answer: (who: string | undefined) => void, fail: (err: Error) => void }

function rig (peers: () => string[] = () => ['p1', 'p2']): { hold: OpHold, asks: Ask[] } {
  const asks: Ask[] = []
  const hold = new OpHold({
    peers,
    hold: async (c, ps, o) => await new Promise<string | undefined>((resolve, reject) => { asks.push({ cid: c, peers: ps, ...(o?.op !== undefined ? { op: o.op } : {}), answer: resolve, fail: reject }) })
  })
  return { hold, asks }
}

async function turns (n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve))
}

describe('OpHold', function () {
  it('asks for one op at a time; waits that come meanwhile are covered by one ask for the newest', async () => {
    const { hold, asks } = rig()
    const done: number[] = []
    const [a, b, c] = await Promise.all([cid(1), cid(2), cid(3)])
    const first = hold.held(a).then(() => { done.push(1) })
    await turns()
    assert.equal(asks.length, 1)
    assert.ok(asks[0].cid.equals(a))
    const second = hold.held(b).then(() => { done.push(2) })
    const third = hold.held(c).then(() => { done.push(3) })
    await turns()
    assert.equal(asks.length, 1, 'no second ask while one runs')
    asks[0].answer('p1')
    await first
    await turns()
    assert.deepEqual(done, [1])
    assert.equal(asks.length, 2, 'one ask for the newest op covers the two waits')
    assert.ok(asks[1].cid.equals(c))
    asks[1].answer('p2')
    await Promise.all([second, third])
    assert.deepEqual(done.sort(), [1, 2, 3])
  })

  it('the peer that held the last op is asked first for the next (it has the chain below it: no parents to fetch)', async () => {
    const { hold, asks } = rig(() => ['p1', 'p2', 'p3', 'p4', 'p5'])
    const ops = await Promise.all([1, 2, 3, 4, 5, 6].map(cid))
    const w0 = hold.held(ops[0])
    await turns()
    const first = asks[0].peers
    assert.equal(first.length, 5)
    asks[0].answer(first[2])
    await w0
    for (let i = 1; i < ops.length; i++) {
      const w = hold.held(ops[i])
      await turns()
      assert.equal(asks[i].peers[0], first[2], `ask ${i} starts with the peer that held the last op`)
      assert.equal(new Set(asks[i].peers).size, 5, 'every peer may still be asked')
      asks[i].answer(first[2])
      await w
    }
    // an ask no peer held leaves no favourite; the next peer that holds one is
    const w6 = hold.held(await cid(7))
    await turns()
    asks[6].answer(undefined)
    await w6
    const w7 = hold.held(await cid(8))
    await turns()
    asks[7].answer('p4')
    await w7
    const w8 = hold.held(await cid(9))
    await turns()
    assert.equal(asks[8].peers[0], 'p4')
    asks[8].answer('p4')
    await w8
  })

  it('the same op asked for again shares its ask, and once held needs none', async () => {
    const { hold, asks } = rig()
    const a = await cid(1)
    const w1 = hold.held(a)
    await turns()
    const w2 = hold.held(a)
    await turns()
    assert.equal(asks.length, 1)
    asks[0].answer('p1')
    await Promise.all([w1, w2])
    await hold.held(a)
    assert.equal(asks.length, 1, 'an op already held is not asked for again')
  })

  it('held(cid, op): the ask carries the op\'s block (an op not applied here yet); asked again without it, the ask is shared', async () => {
    const { hold, asks } = rig()
    const [a, b] = await Promise.all([cid(1), cid(2)])
    const op = new TextEncoder().encode('op 1 block')
    const w1 = hold.held(a, op)
    const w2 = hold.held(a)
    await turns()
    assert.equal(asks.length, 1)
    assert.deepEqual(asks[0].op, op)
    asks[0].answer('p1')
    await Promise.all([w1, w2])
    const w3 = hold.held(b)
    await turns()
    assert.equal(asks[1].op, undefined, 'no block given: the source reads it from the tree')
    asks[1].answer('p1')
    await w3
  })

  it('tells its source of each new op to be asked for (holding), and of one no peer was asked for (unheld)', async () => {
    let peers: string[] = ['p1']
    const told: string[] = []
    const asks: Ask[] = []
    const hold = new OpHold({
      peers: () => peers,
      hold: async (c, ps) => await new Promise<string | undefined>((resolve, reject) => { asks.push({ cid: c, peers: ps, answer: resolve, fail: reject }) }),
      holding: c => { told.push(`holding ${c.toString().slice(-6)}`) },
      unheld: c => { told.push(`unheld ${c.toString().slice(-6)}`) }
    })
    const [a, b, c] = await Promise.all([cid(1), cid(2), cid(3)])
    const name = (x: CID): string => x.toString().slice(-6)
    const w1 = hold.held(a)
    const w2 = hold.held(b)
    const w3 = hold.held(b) // the same op again: told once
    await turns()
    asks[0].answer('p1')
    await w1
    await turns()
    asks[1].answer('p1')
    await Promise.all([w2, w3])
    peers = []
    await hold.held(c)
    assert.deepEqual(told, [`holding ${name(a)}`, `holding ${name(b)}`, `holding ${name(c)}`, `unheld ${name(c)}`])
    assert.equal(asks.length, 2)
  })

  it('no peer to ask, or an ask that fails: the wait ends (the op is durable here only)', async () => {
    let peers: string[] = []
    const { hold, asks } = rig(() => peers)
    await hold.held(await cid(1))
    assert.equal(asks.length, 0)
    peers = ['p1']
    const w = hold.held(await cid(2))
    await turns()
    asks[0].fail(new Error('stream reset'))
    await w
    const w3 = hold.held(await cid(3))
    await turns()
    asks[1].answer(undefined)
    await w3
  })
})
