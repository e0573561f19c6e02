import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { Store } from '../../node/data/store.ts'
import { Custody, CUSTODY, CUSTODY_PROTOCOL } from '../../node/keeper/custody.ts'
import { decodeReply } from '../../node/net/rpc.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

interface Node { host: Host, store: Store, custody: Custody }

async function block (): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new Uint8Array(randomBytes(1024))
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

describe('Custody: a copy is deleted only after its keepers promise to keep it (node/custody.ts)', function () {
  // drops wait CUSTODY_LINGER_MS for the drops that follow them: 20 rounds of two
  this.timeout(60_000)
  const t = new Teardown()
  let nodes: Node[]

  before(async () => {
    const networkKey = createNetworkKey()
    const make = async (join: string[]): Promise<Node> => {
      const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey, listen: [`/memory/custody-${randomBytes(6).toString('hex')}`], join })
      t.add(async () => { await host.stop() })
      const store = await Store.open(await tempDir(t))
      const custody = new Custody({ host, store })
      await custody.start()
      t.add(async () => { await custody.stop() })
      return { host, store, custody }
    }
    const first = await make([])
    nodes = [first, ...await Promise.all([1, 2].map(async () => await make([first.host.addresses()[0]])))]
    await until('meshed', () => nodes.every(n => n.host.peers().length === 2), 10_000)
  })
  after(async () => { await t.run() })

  it('custody.drop([{ cid, keepers: [b] }]) deletes the local copy once b holds the block, and b has promised it', async () => {
    const [a, b] = nodes
    const { cid, bytes } = await block()
    await a.store.put(cid, bytes)
    await b.store.put(cid, bytes)
    assert.deepEqual(await a.custody.drop([{ cid, keepers: [b.host.peerId] }]), [cid.toString()])
    assert.equal(await a.store.has(cid), false)
    assert.equal(await b.store.has(cid), true)
    assert.equal(b.custody.promised(cid), true)
  })

  it('custody.drop() keeps the copy when a keeper does not hold the block, or is not reachable', async () => {
    const [a, b, c] = nodes
    const { cid, bytes } = await block()
    await a.store.put(cid, bytes)
    await b.store.put(cid, bytes)
    assert.deepEqual(await a.custody.drop([{ cid, keepers: [b.host.peerId, c.host.peerId] }]), [])
    assert.deepEqual(await a.custody.drop([{ cid, keepers: ['12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'] }]), [])
    assert.equal(await a.store.has(cid), true)
  })

  it('a host that promised a block does not drop it, even when another host would keep it', async () => {
    const [a, b, c] = nodes
    const { cid, bytes } = await block()
    for (const n of [a, b, c]) await n.store.put(cid, bytes)
    assert.deepEqual(await a.custody.drop([{ cid, keepers: [b.host.peerId] }]), [cid.toString()])
    // b promised a: b keeps its copy although c would promise too
    assert.deepEqual(await b.custody.drop([{ cid, keepers: [c.host.peerId] }]), [])
    assert.equal(await b.store.has(cid), true)
  })

  it('custody.keep() has the keepers (itself among them) promise to the asker, deletes nothing, and counts the keepers that did not', async () => {
    const [a, b, c] = nodes
    const { cid, bytes } = await block()
    await a.store.put(cid, bytes)
    await b.store.put(cid, bytes)
    // c does not hold it: one (block, keeper) pair unpromised
    assert.equal(await a.custody.keep([{ cid, keepers: [a.host.peerId, b.host.peerId, c.host.peerId] }]), 1)
    assert.equal(await a.store.has(cid), true)
    assert.equal(await b.store.has(cid), true)
    // b's promise is a's: another peer asking it to go (release.ts) does not lift it, a itself does
    assert.equal(b.custody.promised(cid, c.host.peerId), true)
    assert.equal(b.custody.promised(cid, a.host.peerId), false)
    // a's promise to itself counts against any other asker, not against a's own deletes
    assert.equal(a.custody.promised(cid, b.host.peerId), true)
    assert.equal(a.custody.promised(cid, a.host.peerId), false)
    assert.equal(c.custody.promised(cid), false)
  })

  it('custody.settle() reports each keeper that does not hold its block, and then deletes none of the local copies; with every keeper promising, it deletes the handed-over copies', async () => {
    const [a, b, c] = nodes
    const handed = await block()
    const kept = await block()
    await a.store.put(handed.cid, handed.bytes)
    await b.store.put(handed.cid, handed.bytes)
    // c was counted as holding `kept` (a placement record), but does not hold it
    const refused: Array<[string, string[]]> = []
    const dropped = await a.custody.settle([{ cid: handed.cid, keepers: [b.host.peerId] }], [{ cid: kept.cid, keepers: [c.host.peerId] }], { refused: (cid, keepers) => { refused.push([cid, keepers]) } })
    assert.deepEqual(refused, [[kept.cid.toString(), [c.host.peerId]]])
    assert.deepEqual(dropped, [])
    assert.equal(await a.store.has(handed.cid), true, 'the copy stays while a keeper of the chunk refused')
    // once c holds it, the same round promises everything and hands the copy over
    await c.store.put(kept.cid, kept.bytes)
    refused.length = 0
    assert.deepEqual(await a.custody.settle([{ cid: handed.cid, keepers: [b.host.peerId] }], [{ cid: kept.cid, keepers: [c.host.peerId] }], { refused: (cid, keepers) => { refused.push([cid, keepers]) } }), [handed.cid.toString()])
    assert.deepEqual(refused, [])
    assert.equal(await a.store.has(handed.cid), false)
    assert.equal(c.custody.promised(kept.cid), true)
  })

  it('custody.deleteUnpromised() does not delete a block promised to another peer, and no promise is given while it deletes', async () => {
    const [a, b] = nodes
    const { cid, bytes } = await block()
    await b.store.put(cid, bytes)
    assert.equal((await a.custody.ask(b.host.peerId, [cid])).has(cid.toString()), true)
    // promised to a: not deleted for anyone but a
    assert.equal(await b.custody.deleteUnpromised(cid, undefined, async () => { await b.store.delete(cid); return true }), false)
    assert.equal(await b.store.has(cid), true)
    // a gives it up itself: deleted, and a promise asked meanwhile is refused
    let asked: Promise<Set<string>> | undefined
    assert.equal(await b.custody.deleteUnpromised(cid, a.host.peerId, async () => {
      asked = b.custody.promise([cid], 'another')
      await b.store.delete(cid)
      return true
    }), true)
    assert.equal((await asked!).has(cid.toString()), false)
    assert.equal(await b.store.has(cid), false)
  })

  it('a promise that ended is not carried into a new one: the new promise is to its asker alone', async () => {
    const [, b] = nodes
    const { cid, bytes } = await block()
    await b.store.put(cid, bytes)
    // (not started: promise() and promised() are local)
    const short = new Custody({ host: b.host, store: b.store }, { promiseMs: 50 })
    const at = Date.now()
    assert.equal((await short.promise([cid], 'first')).has(cid.toString()), true)
    // the promise to 'first' ends (the condition is the clock itself); nothing looks at it meanwhile
    await until('the first promise ended', () => Date.now() > at + 100, 5_000)
    assert.equal((await short.promise([cid], 'second')).has(cid.toString()), true)
    assert.equal(short.promised(cid), true)
    // 'second' giving the block up is not held back by the ended promise to 'first'
    assert.equal(short.promised(cid, 'second'), false)
  })

  it('a wall clock stepped (NTP, a resume) neither ends a promise early nor keeps it past its time: promises are on the monotonic clock', async () => {
    const [, b] = nodes
    const { cid, bytes } = await block()
    await b.store.put(cid, bytes)
    const wall = Date.now
    const step = (ms: number): void => { Date.now = () => wall.call(Date) + ms }
    try {
      // (not started: promise() and promised() are local; the default clock)
      const custody = new Custody({ host: b.host, store: b.store }, { promiseMs: 60_000 })
      assert.equal((await custody.promise([cid], 'asker')).has(cid.toString()), true)
      step(24 * 3600_000)
      assert.equal(custody.promised(cid), true, 'a wall clock stepped a day ahead ended the promise')
      step(-24 * 3600_000)
      assert.equal(custody.promised(cid), true, 'a wall clock stepped a day back ended the promise')
      // a promise made while the wall clock is a day back still ends after promiseMs of the clock
      let mono = 0
      const timed = new Custody({ host: b.host, store: b.store }, { promiseMs: 1_000, clock: () => mono })
      assert.equal((await timed.promise([cid], 'asker')).has(cid.toString()), true)
      step(0)
      mono = 999
      assert.equal(timed.promised(cid), true)
      mono = 1_000
      assert.equal(timed.promised(cid), false, 'the promise outlived promiseMs of its clock')
    } finally {
      Date.now = wall
    }
  })

  it('two holders dropping in favour of each other at once: one copy always stays', async () => {
    const [, b, c] = nodes
    for (let i = 0; i < 20; i++) {
      const { cid, bytes } = await block()
      await b.store.put(cid, bytes)
      await c.store.put(cid, bytes)
      await Promise.all([
        b.custody.drop([{ cid, keepers: [c.host.peerId] }]),
        c.custody.drop([{ cid, keepers: [b.host.peerId] }])
      ])
      const left = (await b.store.has(cid) ? 1 : 0) + (await c.store.has(cid) ? 1 : 0)
      assert.ok(left >= 1, `round ${i}: both copies were dropped`)
    }
  })

  it('a malformed custody request gets its stream aborted and changes nothing', async () => {
    const [a, b] = nodes
    const { cid, bytes } = await block()
    await b.store.put(cid, bytes)
    const stream = await a.host.newStream(b.host.peerId, CUSTODY_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(new Uint8Array([0xff, 0x00, 0x13]))
    // the answer says why (rpc.ts's typed error), and nothing else comes: the stream is aborted
    const answer = decodeReply(CUSTODY, (await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray(), [])
    assert.deepEqual(answer.kind === 'error' && answer.name, 'CustodyProtocolError')
    await assert.rejects(lp.read({ signal: AbortSignal.timeout(5_000) }))
    assert.equal(await b.store.has(cid), true)
    assert.equal(b.custody.promised(cid), false)
    // b still answers well-formed requests
    assert.deepEqual([...await a.custody.ask(b.host.peerId, [cid])], [cid.toString()])
  })

  it('drops that come within CUSTODY_LINGER_MS of one asking the same keeper go in its call, each deleting its own copy', async () => {
    const [a, b] = nodes
    const blocks = await Promise.all(Array.from({ length: 6 }, async () => await block()))
    for (const { cid, bytes } of blocks) {
      await a.store.put(cid, bytes)
      await b.store.put(cid, bytes)
    }
    const promise = b.custody.promise.bind(b.custody)
    const calls: number[] = []
    b.custody.promise = async (cids, to) => { calls.push(cids.length); return await promise(cids, to) }
    try {
      // the first drop, then the rest after a round of real I/O (as a writer's next chunks come)
      const first = a.custody.drop([{ cid: blocks[0].cid, keepers: [b.host.peerId] }])
      await a.store.has(blocks[0].cid)
      const dropped = await Promise.all([first, ...blocks.slice(1).map(async ({ cid }) => await a.custody.drop([{ cid, keepers: [b.host.peerId] }]))])
      assert.deepEqual(dropped, blocks.map(({ cid }) => [cid.toString()]), 'each drop deleted its own copy')
    } finally {
      b.custody.promise = promise
    }
    for (const { cid } of blocks) assert.equal(await a.store.has(cid), false)
    assert.equal(calls.reduce((n, c) => n + c, 0), blocks.length, 'each block asked once')
    assert.deepEqual(calls, [blocks.length], 'one call for the six: the first waited for the five that came after it')
  })
})
