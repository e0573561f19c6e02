import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { Announcer, ANNOUNCE_CONCURRENCY } from '../../node/net/announce.ts'
import { until } from '../../harness/cluster.ts'

const cidOf = async (i: number): Promise<CID> => CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`block ${i}`)))

describe('Announcer: provider records off the data path (node/announce.ts)', () => {
  it('announcer.announce() returns at once, dedupes, and provides a few at a time', async () => {
    let inFlight = 0
    let most = 0
    const provided: string[] = []
    const a = new Announcer(async (cid) => {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise(resolve => setTimeout(resolve, 5))
      provided.push(cid.toString())
      inFlight--
    })
    const cids = await Promise.all(Array.from({ length: 20 }, async (_, i) => await cidOf(i)))
    for (const c of cids) { a.announce(c); a.announce(c) }
    await until('all provided', () => provided.length === 20, 5_000)
    assert.equal(new Set(provided).size, 20)
    assert.ok(most <= ANNOUNCE_CONCURRENCY)
    assert.equal(a.stats().announced, 20)
  })

  it('announcer.announce() makes no record while it is not wanted (a full-mesh network), and failures are counted', async () => {
    let wanted = false
    let calls = 0
    const a = new Announcer(async () => { calls++; throw new Error('dht down') }, () => wanted)
    a.announce(await cidOf(1))
    assert.equal(a.stats().queued, 0, 'nothing queued while records are not wanted')
    wanted = true
    a.announce(await cidOf(2))
    // the queue is first in, first out: once the second is tried, a queued first would have been too
    await until('tried', () => a.stats().failed === 1, 5_000)
    assert.equal(calls, 1, 'only the announcement made while wanted was tried')
    a.stop()
    a.announce(await cidOf(3))
    assert.equal(calls, 1)
  })
})
