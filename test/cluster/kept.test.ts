// Status without surveys (issue 14 item 5): each host counts the chunks it is the keeper of and
// tells those counts on its space notices; another host's network totals sum them. Real hosts
// (seven in one process, k=4 m=2: one more than a chunk's fragments), real repair.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { emptyKept, retained, signKept } from '../../node/keeper/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { SPACE, notify, signerFor } from '../../node/net/index.ts'
import { ControlClient } from '../../node/cli/index.ts'

/** A scrape of GET /metrics over a host's control socket: series (name and labels as written) -> value. */
async function scrape (dir: string): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ socketPath: join(dir, 'control.sock'), path: '/metrics', method: 'GET' }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: ${res.statusCode ?? 0} ${body}`)) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(darkfs_network_\S+) (\S+)$/.exec(line)
    if (m !== null) series.set(m[1], Number(m[2]))
  }
  return series
}

// Background passes off (interval 0): passes run when a member is declared gone, or when called.
const keep = { failureTimeoutMs: 1000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('keeper counts: network totals in status, told by each keeper (7 in-process hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  let refs: ChunkRef[]

  before(async () => {
    hosts = await startCluster(t, 7, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/k.bin', [randomBytes(3 << 20)], { wait: 'safe' })
    refs = [...(await retained(hosts[0].volume, 3600_000)).chunks.values()]
    assert.ok(refs.length >= 3, `chunks: ${refs.length}`)
    await until('every host sees the file', async () => {
      try { for (const h of hosts) await h.volume.stat('/k.bin'); return true } catch { return false }
    })
  })
  after(async () => { await t.run() })

  it('a chunk its keeper repaired shows redundant in another host\'s status, which sent no survey', async () => {
    // the host that stops (it holds fragments of some chunks: each is on 6 of the 7), and an
    // observer that is the keeper of none of the chunks once it stopped (so every figure it
    // shows is told to it)
    const gone = hosts[6]
    const live = hosts.slice(0, 6)
    const liveIds = live.map(h => h.host.peerId)
    const keepers = new Set(refs.map(r => hosts[0].policy.rank(r, liveIds, 1)[0]))
    const b = live.find(h => !keepers.has(h.host.peerId))!
    assert.ok(b !== undefined)
    // every keeper surveys its chunks once (what a background pass does after new content)
    await Promise.all(hosts.map(async h => await h.keep.repairer.pass()))
    const totals = (): any => b.kept.totals()
    await until('the observer\'s network totals count every chunk redundant, from all seven', () => {
      const n = totals()
      return n.reporting === 7 && n.chunks.redundant === refs.length && n.chunks.total === refs.length
    }, 30_000)
    assert.equal(b.keep.kept().chunks.redundant, 0, 'the observer keeps none of them')

    // from here the observer sends no have-query (no survey) and fetches nothing
    let asked = 0
    const swarm = b.swarm as any
    for (const name of ['has', 'pullAny', 'pull', 'want']) {
      const f = swarm[name]
      if (typeof f !== 'function') continue
      swarm[name] = async (...args: unknown[]) => { asked++; return await f.apply(swarm, args) }
    }
    // no pass anywhere while the loss is told (the keepers repair below, when called)
    for (const h of live) await h.keep.repairer.stop()
    await gone.stop()
    await until('the keepers told the loss: degraded in the observer\'s network totals', () => {
      const n = totals()
      return n.members === 6 && n.reporting === 6 && n.chunks.degraded + n.chunks.atRisk > 0
    }, 30_000)
    // the observer's own book sees the holder gone (degraded), and will never see the repair
    assert.ok((await b.keep.health()).degraded > 0)
    // the keepers repair (their passes), the observer's repairer stays stopped
    await Promise.all(live.filter(h => h !== b).map(async h => { h.keep.repairer.start(); await h.keep.repairer.pass() }))
    await until('the keepers repaired, and told: redundant in the observer\'s network totals', () => {
      const n = totals()
      return n.reporting === 6 && n.chunks.redundant === refs.length && n.chunks.degraded === 0 && n.chunks.atRisk === 0
    }, 60_000)
    // through the API too, as `darkfs status` reads it
    const s = await new ControlClient(b.dir).get('/v1/status')
    assert.equal(s.network.chunks.redundant, refs.length)
    assert.equal(s.network.reporting, 6)
    // and through GET /metrics (the gauges of the network totals)
    const m = await scrape(b.dir)
    const n = totals()
    assert.equal(m.get('darkfs_network_chunks{state="redundant"}'), refs.length)
    for (const state of ['degraded', 'at-risk', 'unreachable', 'lost']) assert.equal(m.get(`darkfs_network_chunks{state="${state}"}`), 0, state)
    assert.equal(m.get('darkfs_network_bytes{state="redundant"}'), n.bytes.redundant)
    assert.ok(n.bytes.redundant >= 3 << 20, `the file's bytes: ${n.bytes.redundant}`)
    assert.equal(m.get('darkfs_network_reporting_members'), 6)
    assert.equal(m.get('darkfs_network_members'), 6)
    assert.ok((m.get('darkfs_network_counts_age_seconds') ?? -1) >= 0)
    // the repair is real: every chunk's fragments on live hosts again
    for (const r of refs) {
      let held = 0
      for (const f of r.fragments) {
        for (const h of live) if (await h.store.has(f)) { held++; break }
      }
      assert.equal(held, r.k + r.m, 'every fragment held by a live host')
    }
    const repaired = live.reduce((a, h) => a + h.keep.repairer.totals().fragmentsRepaired, 0)
    assert.ok(repaired > 0, 'the keepers rebuilt what the stopped host held')
    const own = await b.keep.health()
    assert.ok(own.degraded > 0, `the observer did not look itself: its own book still says degraded (${JSON.stringify(own)})`)
    assert.equal(asked, 0, 'the observer sent no have-query nor fetch')
  })

  it('a forged record (signed by another key) and an oversized one are refused; the counts held stay', async () => {
    const [a, b, c] = hosts
    const before = b.kept.table.get(c.host.peerId)
    const refused = b.kept.refused
    // a record that names c, signed by a key that is not c's
    const key = await generateKeyPair('Ed25519')
    const forger = { ...signerFor(key), author: c.host.peerId }
    const counts = emptyKept()
    counts.chunks.lost = 1000
    const forged = await signKept(forger, Date.now() * 1000 * 2, counts)
    await notify(a.host, b.host.peerId, SPACE, { full: false, seq: Date.now() * 1000 * 2, kept: forged })
    await until('the observer refused it', () => b.kept.refused > refused)
    assert.deepEqual(b.kept.table.get(c.host.peerId)?.seq, before?.seq)
    assert.equal(b.kept.totals().chunks.lost, 0)
    // over the bound: the whole notice is refused. Said full under a higher sequence number
    // than the one after it: taken, it would leave `a` full whatever came after
    const seq = Date.now() * 1000 * 4
    await notify(a.host, b.host.peerId, SPACE, { full: true, seq: seq + 1, kept: new Uint8Array(600) }).catch(() => {})
    // one of a's own, with a count out of range: refused by the host it reaches
    const bad = await signKept({ ...signerFor(key), author: a.host.peerId }, 1, { ...counts, chunks: { ...counts.chunks, lost: 2 ** 41 } })
    await notify(a.host, b.host.peerId, SPACE, { full: false, seq, kept: bad })
    await until('the out-of-range one refused too', () => b.kept.refused > refused + 1)
    assert.ok(!b.keep.membership.fullHosts().includes(a.host.peerId), 'the oversized notice was not applied')
    assert.equal(b.kept.totals().chunks.lost, 0)
  })
})
