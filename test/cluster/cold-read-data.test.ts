// A cold read of a file written on another host, every data fragment placed (issue 15 item 3:
// rebuild from parity only when a data fragment is missing): the reader fetches data fragments
// and takes a parity fragment from a peer only for one it could not have or whose request went
// past its hedge time (swarm pullAny `ordered`, keeper/network.ts fetch). Six in-process hosts
// (k = 4, m = 2: each host a target of one fragment of every chunk).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { assignment } from '../../node/keeper/index.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20
/** Chunks of the file: enough that the reader has several chunks in flight at once (readahead). */
const CHUNKS = 32

describe('cold read of a placed file (six in-process hosts, k=4, m=2)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('fetches data fragments only: parity from a peer only for a request past its hedge time (or a holder known slow), decodes only through a parity fragment the reader holds', async () => {
    // Fails before coldread36: a data fragment whose holder had more requests queued than a
    // parity holder (readahead keeps many chunks in flight) was passed over for the parity
    // fragment, and the reader decoded: parity fetched for several chunks with no hedge at all
    const hosts = await startMesh(t, 6, { members: true })
    const [writer] = hosts
    const data = randomBytes(CHUNKS * MiB)
    await writer.volume.replaceFile('/cold.bin', [data], { wait: 'safe' })
    const refs = await chunksOf(writer, '/cold.bin')
    assert.ok(refs.every(r => r.k === 4 && r.m === 2), `4+2 chunks (k = ${refs[0]?.k}, m = ${refs[0]?.m})`)
    const members = writer.policy.members()
    const byId = new Map(hosts.map(h => [h.host.peerId, h]))
    // every fragment on each of its targets (the writer's copies handed over): the reader's
    // first guess (the targets) holds every fragment it asks for
    await until('every chunk placed, each fragment on its targets', async () => {
      if (writer.network.pending.size > 0) return false
      for (const r of refs) {
        const want = assignment(writer.policy.rank(r, members, r.k + r.m), r.k, r.m)
        for (const [j, f] of r.fragments.entries()) {
          for (const p of want[j]) if (await byId.get(p)!.store.has(f) !== true) return false
        }
      }
      return true
    }, 120_000)
    const reader = hosts[3]
    await until('the reader sees the file', async () => { try { await reader.volume.stat('/cold.bin'); return true } catch { return false } })
    // chunks the reader cannot read from its own data fragments but holds a parity fragment of:
    // using it saves fetching a data fragment, at the cost of a decode
    let parityHere = 0
    for (const r of refs) {
      const held = await Promise.all(r.fragments.map(async f => await reader.store.has(f)))
      if (held.slice(r.k).some(Boolean)) parityHere++
    }
    reader.volume.chunks.dropCache()
    const before = reader.volume.chunks.readCounters()
    const hedged0 = reader.swarm.stats().hedged
    const passed0 = reader.swarm.stats().passedOver
    const got = await reader.volume.readFile('/cold.bin')
    assert.ok(Buffer.from(got).equals(data), 'the bytes read are the bytes written')
    const after = reader.volume.chunks.readCounters()
    // the reasons a read may take parity from a peer with every data fragment placed: a request
    // past its hedge time, or a data holder passed over, known to be much slower per block or,
    // with the reader's queue on it, past ORDERED_QUEUED_FLOOR_MS (swarm ORDERED_SLOW_FACTOR).
    // Each hedge is one request; passedOver counts every block asked with an earlier one passed
    // over (up to k a chunk, data blocks included), so the sum is an upper bound, not a tally
    const hedged = reader.swarm.stats().hedged - hedged0 + reader.swarm.stats().passedOver - passed0
    const parityFetched = after.parityFetched - before.parityFetched
    const rebuilt = after.rebuilt - before.rebuilt
    assert.ok(after.fetches - before.fetches >= CHUNKS - 1, `the chunks came from peers (${after.fetches - before.fetches} fetches)`)
    assert.ok(parityFetched <= hedged, `${parityFetched} chunk(s) took a parity fragment from a peer, ${hedged} request(s) went past their hedge time or passed a slow holder over`)
    assert.ok(rebuilt <= parityHere + hedged, `${rebuilt} chunk(s) decoded; ${parityHere} with a parity fragment here, ${hedged} hedged or passed over`)
    // the same, as a scrape reads it (darkfs_chunk_reads_total{path}): every chunk on one path
    const scraped = await reader.metrics.registry.metrics()
    const count = (path: string): number => Number(new RegExp(`darkfs_chunk_reads_total\\{path="${path}"\\} (\\d+)`).exec(scraped)?.[1] ?? NaN)
    assert.equal(count('data') + count('parity_here') + count('parity_fetched'), after.coded, scraped.split('\n').filter(l => l.startsWith('darkfs_chunk_reads')).join('; '))
    assert.equal(count('parity_fetched'), after.parityFetched)
  })
})
