import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, createNetworkKey, OPS, call, serve, LACK_MAX_IDS, LACK_MAX_LIST } from '../../node/net/index.ts'
import type { OpsReply, Host } from '../../node/net/index.ts'
import { OpSet, rbsrInitiate } from '../../node/tree/index.ts'
import type { Tree } from '../../node/tree/index.ts'
import { CID } from 'multiformats/cid'
import v8 from 'node:v8'
import vm from 'node:vm'
import { until, heads, orderedKeys, mkdirs, syncRig } from '../helpers/sync-rig.ts'
import type { Up } from '../helpers/sync-rig.ts'

// One rbsr run serving both directions (node/net/sync.ts "One run both ways"): its tokens, its
// failures, and the lack calls it accepts.

describe('sync: one run both ways', function () {
  this.timeout(120_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () { while (teardown.length > 0) await teardown.pop()!().catch(() => {}) })
  const { memAddr, openTree, up } = syncRig(teardown, 'sbw')

  /** Keys (a's id sorts first) and trees for a and b, with `nA` and `nB` dirs of their own. */
  async function twoTrees (nA: number, nB: number): Promise<{ kA: PrivateKey, kB: PrivateKey, tA: Tree, tB: Tree }> {
    const [kA, kB] = await orderedKeys()
    const tA = await openTree(kA)
    const tB = await openTree(kB)
    await mkdirs(tA, 'a-', nA)
    await mkdirs(tB, 'b-', nB)
    return { kA, kB, tA, tB }
  }

  for (const gossip of [false, true]) {
    it(`the host whose id sorts first restarts (same key, new process): the other takes the ops it wrote while down (gossip ${String(gossip)})`, async function () {
      const net = createNetworkKey()
      const { kA, kB, tA, tB } = await twoTrees(3, 3)
      const b = await up(net, kB, tB, { gossip })
      const a1 = await up(net, kA, tA, { gossip })
      await a1.host.dial(b.host.addresses()[0])
      await until('first sync', () => tA.size === 6 && tB.size === 6 && a1.sync.stats().reconciles >= 1 && b.sync.stats().reconciles >= 1)
      assert.equal(b.sync.stats().rbsrServed, 1)
      await a1.stop()
      await until('b sees a gone', () => b.host.peers().length === 0)
      await mkdirs(tA, 'offline-', 4)
      const before = b.sync.stats().reconciles
      const a2 = await up(net, kA, tA, { gossip })
      await a2.host.dial(b.host.addresses()[0])
      await until('both reconciled again', () => a2.sync.stats().reconciles >= 1 && b.sync.stats().reconciles > before)
      // what b's reconcile brought: gossip of a's new heads (none are published for old ops) does not
      assert.equal(tB.size, 10, `b holds ${tB.size} ops, a ${tA.size}: b's reconcile ended without a's offline ops`)
      assert.equal(heads(tA), heads(tB))
    })
  }

  it('one failed ops stream on the host whose id sorts first (each of its first 8 in turn): both end with the union, the other\'s served wait not left to run out', async function () {
    const net = createNetworkKey()
    for (let k = 0; k < 8; k++) {
      const { kA, kB, tA, tB } = await twoTrees(50, 50)
      // the served wait far longer than the bound below: the union must not wait for it
      const a = await up(net, kA, tA, { failAt: new Set([k]), servedWaitMs: 600_000 })
      const b = await up(net, kB, tB, { servedWaitMs: 600_000 })
      await b.host.dial(a.host.addresses()[0])
      await until(`union with stream ${k} failing`, () => tA.size === 100 && tB.size === 100, 20000)
      assert.equal(heads(tA), heads(tB))
      await b.stop()
      await a.stop()
    }
  })

  /** A bare host m (no sync) that counts the byid ids b asks of it (it holds none of them), dialled to b. */
  async function bare (net: Uint8Array, key: PrivateKey, b: Up): Promise<{ m: Host, asked: () => number, headsAsked: () => number }> {
    const m = await createHost({ privateKey: key, networkKey: net, listen: [memAddr()], join: [] })
    teardown.push(async () => { await m.stop() })
    let asked = 0
    const unserve = await serve(m, OPS, {
      call: async (req): Promise<OpsReply> => {
        if (req.t === 'byid') { asked += req.ids.length; return { t: 'ops', ops: [] } }
        if (req.t === 'heads') { headsAsked++; return { t: 'heads', heads: [] } }
        throw new Error('not served here')
      },
      notice: async () => {}
    })
    let headsAsked = 0
    teardown.push(unserve)
    await m.dial(b.host.addresses()[0])
    await until('connected', () => b.host.peers().length === 1)
    return { m, asked: () => asked, headsAsked: () => headsAsked }
  }
  /** b (5 ops of its own, no gossip) and a bare host m whose id sorts first, dialled to it; `offer`: m offers rbsr both ways (its set: one id b lacks, the same each time) and b takes it. */
  async function bWithBare (): Promise<{ b: Up, m: Host, asked: () => number, headsAsked: () => number, offer: () => Promise<void> }> {
    const net = createNetworkKey()
    const [kM, kB] = await orderedKeys()
    const tB = await openTree(kB)
    await mkdirs(tB, 'b-', 5)
    const b = await up(net, kB, tB)
    const bm = await bare(net, kM, b)
    const mine = new OpSet()
    mine.add(1, randomBytes(32))
    const offer = async (): Promise<void> => {
      const r = await call(bm.m, b.host.peerId, OPS, { t: 'rbsr', m: rbsrInitiate(mine), b: true }, { timeoutMs: 10000 })
      assert.ok(r.t === 'rbsr' && r.b === true, 'b takes the offer')
    }
    return { b, ...bm, offer }
  }

  it('a lack call no run of this host waits on (no offer taken, no d) is refused, and nothing it names is fetched', async function () {
    const { m, asked, b } = await bWithBare()
    await assert.rejects(call(m, b.host.peerId, OPS, { t: 'lack', k: 1, ids: randomBytes(32 * 8) }, { timeoutMs: 10000 }))
    await assert.rejects(call(m, b.host.peerId, OPS, { t: 'lack', k: 1, ids: randomBytes(32 * 8), e: true }, { timeoutMs: 10000 }))
    assert.equal(asked(), 0)
  })

  it('a lack list of an offer this host took holds at most LACK_MAX_LIST ids (calls past it are answered, the list ends there and its ids not asked yet are dropped), and a second list needs a second offer taken', async function () {
    const { m, asked, b, offer } = await bWithBare()
    // m offers (its set: one id b lacks); b takes the offer
    await offer()
    const calls = LACK_MAX_LIST / LACK_MAX_IDS + 2
    for (let i = 0; i < calls; i++) await call(m, b.host.peerId, OPS, { t: 'lack', k: 7, ids: randomBytes(32 * LACK_MAX_IDS) }, { timeoutMs: 10000 })
    await until('b asked some', () => asked() > 0, 60000)
    // the fetch's requests in flight are answered, the rest of the list was dropped: nothing more is asked
    let last = -1; let since = Date.now()
    await until('quiet', () => { if (asked() !== last) { last = asked(); since = Date.now() } return Date.now() - since > 500 }, 60000)
    assert.ok(asked() <= LACK_MAX_LIST, `b asked ${asked()} ids`)
    // another token, no offer taken since: refused
    await assert.rejects(call(m, b.host.peerId, OPS, { t: 'lack', k: 8, ids: randomBytes(32) }, { timeoutMs: 10000 }))
  })

  for (const how of ['given up (a)', 'past LACK_MAX_LIST'] as const) {
    it(`a taken lack list cut short (${how}) with no run of this host waiting on it: this host reconciles with the peer again`, async function () {
      const { m, headsAsked, b, offer } = await bWithBare()
      // b's own run on connect (m does not answer rbsr: b walks heads) is over
      await until('b reconciled on connect', () => b.sync.stats().reconciles >= 1 && headsAsked() >= 1)
      const before = headsAsked()
      await offer()
      await call(m, b.host.peerId, OPS, { t: 'lack', k: 9, ids: randomBytes(32 * 4) }, { timeoutMs: 10000 })
      if (how === 'given up (a)') {
        await call(m, b.host.peerId, OPS, { t: 'lack', k: 9, ids: new Uint8Array(0), e: true, a: true }, { timeoutMs: 10000 })
      } else {
        for (let i = 0; i <= LACK_MAX_LIST / LACK_MAX_IDS; i++) await call(m, b.host.peerId, OPS, { t: 'lack', k: 9, ids: randomBytes(32 * LACK_MAX_IDS) }, { timeoutMs: 10000 })
      }
      await until('b reconciles with m again', () => headsAsked() > before, 15000)
    })
  }

  for (const when of ['before the newer list\'s first call', 'after a newer list replaced it'] as const) {
    it(`a stale give-up (a) of an older list, ${when}, does not end the newer run's list`, async function () {
      const { m, asked, b, offer } = await bWithBare()
      await offer()
      await call(m, b.host.peerId, OPS, { t: 'lack', k: 20, ids: randomBytes(32 * 4) }, { timeoutMs: 10000 })
      if (when === 'after a newer list replaced it') {
        await offer()
        await call(m, b.host.peerId, OPS, { t: 'lack', k: 21, ids: randomBytes(32 * 4) }, { timeoutMs: 10000 })
      }
      await offer()
      // run 20's give-up comes late, after m's newest run's offer was taken
      await call(m, b.host.peerId, OPS, { t: 'lack', k: 20, ids: new Uint8Array(0), e: true, a: true }, { timeoutMs: 10000 })
      await until('the ids told so far asked', () => asked() >= (when === 'after a newer list replaced it' ? 8 : 4))
      const before = asked()
      // the newest run's list is taken, and what it names fetched
      await call(m, b.host.peerId, OPS, { t: 'lack', k: 22, ids: randomBytes(32 * 4), e: true }, { timeoutMs: 10000 })
      await until('the newest list\'s ids asked', () => asked() >= before + 4)
    })
  }

  it('a lack list that ended keeps none of its ids: the CIDs a served host holds do not fall when its sync stops', async function () {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const net = createNetworkKey()
    const { kA, kB, tA, tB } = await twoTrees(20000, 1)
    const a = await up(net, kA, tA)
    const b = await up(net, kB, tB)
    await b.host.dial(a.host.addresses()[0])
    await until('union', () => tA.size === 20001 && tB.size === 20001 && a.sync.stats().reconciles >= 1 && b.sync.stats().reconciles >= 1, 60000)
    assert.equal(b.sync.stats().rbsrServed, 1)
    // quiet: the stats stop changing for 500 ms
    let last = ''; let since = Date.now()
    await until('quiet', () => { const k = JSON.stringify([a.sync.stats(), b.sync.stats()]); if (k !== last) { last = k; since = Date.now() } return Date.now() - since > 500 })
    const cids = async (): Promise<number> => { gc(); gc(); return v8.queryObjects(CID, { format: 'count' }) }
    const before = await cids()
    await b.sync.stop()
    const after = await cids()
    assert.ok(before - after < 1000, `stopping b's sync let go of ${before - after} CIDs`)
  })

  it('a served run waits for its list\'s end for servedWaitMs, and then for the fetch of what it named however long that takes (a slow link): it runs no rbsr of its own', async function () {
    const net = createNetworkKey()
    const { kA, kB, tA, tB } = await twoTrees(50, 50)
    const a = await up(net, kA, tA)
    // b's first ops stream (its own run's offer, which a answers with d) goes at once, each later
    // one (its fetch by id of what a tells it) takes longer than b's served wait
    const b = await up(net, kB, tB, { servedWaitMs: 1000, delayMs: 2000 })
    await b.host.dial(a.host.addresses()[0])
    await until('union', () => tA.size === 100 && tB.size === 100 && a.sync.stats().reconciles >= 1 && b.sync.stats().reconciles >= 1, 30000)
    const sb = b.sync.stats()
    assert.equal(sb.rbsrServed, 1)
    assert.equal(sb.rbsrRounds, 0, 'b ran rbsr itself')
    assert.equal(heads(tA), heads(tB))
  })
})
