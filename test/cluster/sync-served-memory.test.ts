import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import v8 from 'node:v8'
import vm from 'node:vm'
import { CID } from 'multiformats/cid'
import { createHost, createNetworkKey, OPS, call, serve, LACK_MAX_IDS, LACK_MAX_LIST } from '../../node/net/index.ts'
import type { OpsReply } from '../../node/net/index.ts'
import { OpSet, rbsrInitiate } from '../../node/tree/index.ts'
import { until, orderedKeys, mkdirs, syncRig } from '../helpers/sync-rig.ts'

// A lack list (node/net/sync.ts "One run both ways") that ends not whole (a newer list replaced
// it) drops the ids its fetch has not asked yet: a peer that offers, lists LACK_MAX_LIST ids and
// offers again, while answering byid slowly, does not make this host hold every list's ids
// (review38h: ~262k CIDs more per list).

describe('sync: replaced lack lists let their ids go', function () {
  this.timeout(120_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () { while (teardown.length > 0) await teardown.pop()!().catch(() => {}) })
  const { memAddr, openTree, up } = syncRig(teardown, 'ssm')

  it('a peer offering again and again, each time with a LACK_MAX_LIST list, answering byid slowly: the CIDs this host holds stay bounded', async function () {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const cids = (): number => { gc(); gc(); return v8.queryObjects(CID, { format: 'count' }) }
    const net = createNetworkKey()
    // m's id sorts first: b takes m's offers (b's own runs never serve m)
    const [kM, kB] = await orderedKeys()
    const tB = await openTree(kB)
    await mkdirs(tB, 'b-', 5)
    const { host: bHost } = await up(net, kB, tB)
    const m = await createHost({ privateKey: kM, networkKey: net, listen: [memAddr()], join: [] })
    teardown.push(async () => { await m.stop() })
    // m: byid answered after 8 s (none of the ops), heads empty, rbsr not served (b's own runs walk heads)
    const unserve = await serve(m, OPS, {
      call: async (req): Promise<OpsReply> => {
        if (req.t === 'byid') { await new Promise(resolve => setTimeout(resolve, 8000)); return { t: 'ops', ops: [] } }
        if (req.t === 'heads') return { t: 'heads', heads: [] }
        throw new Error('not served here')
      },
      notice: async () => {}
    })
    teardown.push(unserve)
    await m.dial(bHost.addresses()[0])
    await until('connected', () => bHost.peers().length === 1)
    const base = cids()
    const mine = new OpSet()
    mine.add(1, randomBytes(32))
    const offer = async (): Promise<void> => {
      const o = await call(m, bHost.peerId, OPS, { t: 'rbsr', m: rbsrInitiate(mine), b: true }, { timeoutMs: 10000 })
      assert.ok(o.t === 'rbsr' && o.b === true, 'b takes the offer')
    }
    const R = 3
    for (let r = 0; r < R; r++) {
      await offer()
      for (let i = 0; i < LACK_MAX_LIST / LACK_MAX_IDS; i++) await call(m, bHost.peerId, OPS, { t: 'lack', k: 100 + r, ids: randomBytes(32 * LACK_MAX_IDS) }, { timeoutMs: 10000 })
    }
    // a last offer ends the last list too: every list ended not whole
    await offer()
    await call(m, bHost.peerId, OPS, { t: 'lack', k: 100 + R, ids: randomBytes(32) }, { timeoutMs: 10000 })
    const held = cids() - base
    // before: every list's ids stayed wanted (R * LACK_MAX_LIST); now only what was in flight
    assert.ok(held < LACK_MAX_LIST / 4, `b holds ${held} CIDs more after ${R} replaced lists of ${LACK_MAX_LIST}`)
  })
})
