// Who may have a holder delete a block (keeper/release.ts, session 34), on real hosts: B places a
// block on D (pushes it, D promises it to B), a version B commits names it, and D has not heard
// of that commit (here: no op names it at all); once B's promise ended, any member's release had
// D delete it (before: A's release deleted B's fragment). Now D refuses every asker but B, a
// member that pushes the same bytes and then releases them included, and counts the refusals.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { until } from '../../harness/cluster.ts'
import { meshSuite } from '../helpers/mesh.ts'
import { FEATURE_ORIGINS } from '../../node/net/index.ts'

const RAW = 0x55

describe('a release asked by a member that did not put the block (three hosts)', function () {
  this.timeout(120_000)
  // promises end soon: B's no longer keeps the block when A asks
  const { hosts } = meshSuite(3, { transport: 'tcp', daemon: { custodyPromiseMs: 1_000 } })

  it('B places a block on D; once B\'s promise ended, A\'s release of it (pushed by A too) is refused; B\'s own deletes it', async () => {
    const [a, b, d] = hosts
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    const acks = await b.swarm.push([{ cid, bytes, to: [d.host.peerId] }])
    assert.deepEqual(acks.get(cid.toString()), [d.host.peerId], 'D stored B\'s block')
    const promised: Set<string> = await b.custody.ask(d.host.peerId, [cid])
    assert.ok(promised.has(cid.toString()), 'D promised the block to B')
    await until('D\'s promise to B ended', () => !d.custody.promised(cid), 30_000)

    const release = (peer: any): any => peer.network.c.release
    let gone: Set<string> = await release(a).ask(d.host.peerId, [cid])
    assert.equal(gone.size, 0, 'A\'s release refused')
    assert.equal(await d.store.has(cid), true, 'D kept B\'s block')
    // A pushes the same bytes itself, then asks again
    await a.swarm.push([{ cid, bytes, to: [d.host.peerId] }])
    gone = await release(a).ask(d.host.peerId, [cid])
    assert.equal(gone.size, 0, 'A\'s release refused after its own push of the bytes')
    assert.equal(await d.store.has(cid), true, 'D kept B\'s block')
    assert.ok(d.release.refusals.claimed >= 2, `counted: ${JSON.stringify(d.release.refusals)}`)
    const scraped = await d.metrics.registry.metrics()
    assert.match(scraped, /darkfs_release_refused_blocks_total\{reason="claimed"\} [2-9]/, 'in the metrics')

    gone = await release(b).ask(d.host.peerId, [cid])
    assert.deepEqual([...gone], [cid.toString()], 'B\'s own release deletes it')
    assert.equal(await d.store.has(cid), false)
  })

  // the swarm PUSH names its origin (1.2.0): a hop forwarding B's block tells D it is B's, so a
  // release of it by another member is refused at once, not let through as a fresh relay
  it('B pushes a block down a chain through A to D: A\'s release of it on D is refused, B\'s deletes it', async () => {
    const [a, b, d] = hosts
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    const acks = await b.swarm.push([{ cid, bytes, to: [a.host.peerId, d.host.peerId] }])
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])].sort(), [a.host.peerId, d.host.peerId].sort(), 'A and D stored it')
    const release = (peer: any): any => peer.network.c.release
    const before = d.release.refusals.notPut
    assert.equal((await release(a).ask(d.host.peerId, [cid])).size, 0, 'A\'s release refused')
    assert.equal(await d.store.has(cid), true)
    assert.equal(d.release.refusals.notPut, before + 1)
    assert.deepEqual([...await release(b).ask(d.host.peerId, [cid])], [cid.toString()], 'B\'s own release deletes it')
  })

  // session 36, gap C: B's push alone (its promise round not come yet) names B; A pushing the
  // same bytes and releasing them had D delete B's block (B's round then had to place it again)
  it('B pushes a block to D, A pushes the same bytes: before B\'s promise round, A\'s release is refused; B\'s deletes it', async () => {
    const [a, b, d] = hosts
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    assert.deepEqual((await b.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId], 'D stored B\'s block')
    assert.deepEqual((await a.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId], 'D took A\'s push of it')
    const release = (peer: any): any => peer.network.c.release
    const before = d.release.refusals.claimed
    assert.equal((await release(a).ask(d.host.peerId, [cid])).size, 0, 'A\'s release refused')
    assert.equal(await d.store.has(cid), true, 'D kept B\'s block')
    assert.equal(d.release.refusals.claimed, before + 1)
    assert.deepEqual([...await release(b).ask(d.host.peerId, [cid])], [cid.toString()], 'B\'s own release deletes it')
  })

  // session 36, gap B: a push naming no origin (an older host's, maybe a hop of anyone's chain)
  // let any member release the block for a minute; once every member announces origins/1 (all
  // three here), such a push is its sender's alone
  it('every member names its pushes\' origins: a block B pushed to D naming no one is refused to A at once', async () => {
    const [a, b, d] = hosts
    await until('D sees every member announce origins/1', () => d.features.supportedByAll(FEATURE_ORIGINS), 30_000)
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    // as D's sink stores an older host's push (swarm 1.1.0: no origin), told first
    d.release.arriving(cid, b.host.peerId, undefined)
    await d.store.put(cid, bytes)
    const release = (peer: any): any => peer.network.c.release
    const before = d.release.refusals.notPut
    assert.equal((await release(a).ask(d.host.peerId, [cid])).size, 0, 'A\'s release refused, the push fresh as it is')
    assert.equal(await d.store.has(cid), true)
    assert.equal(d.release.refusals.notPut, before + 1)
    assert.deepEqual([...await release(b).ask(d.host.peerId, [cid])], [cid.toString()], 'B\'s own release deletes it')
  })

  // gc37: a push named any string as its origin, listed and allowed to release the block; the
  // daemon takes an origin only when it is a member (its member table) or connected
  it('a push to D naming a member as origin is that member\'s to release; one naming a made-up origin is nobody\'s', async () => {
    const [a, b, d] = hosts
    const release = (peer: any): any => peer.network.c.release
    const [x, y] = [randomBytes(64 * 1024), randomBytes(64 * 1024)]
    const cx = CID.create(1, RAW, await sha256.digest(x))
    const cy = CID.create(1, RAW, await sha256.digest(y))
    // as D's sink stores B's relays of them (told first)
    d.release.arriving(cx, b.host.peerId, a.host.peerId)
    await d.store.put(cx, x)
    const strange = d.release.strangeOrigins
    d.release.arriving(cy, b.host.peerId, 'made-up-writer')
    await d.store.put(cy, y)
    assert.equal(d.release.strangeOrigins, strange + 1, 'the made-up origin counted')
    assert.deepEqual([...await release(a).ask(d.host.peerId, [cx])], [cx.toString()], 'A, a member named as origin, releases its block')
    assert.equal((await release(b).ask(d.host.peerId, [cy])).size, 0, 'a block pushed naming a made-up origin is refused, to its sender too')
    assert.equal(await d.store.has(cy), true, 'kept (left to GC)')
  })

  // session 36, gap A: a block D holds with no record of who put it (pulled here by repair or a
  // pin, or held across a restart, or its record flushed) became A's alone when A pushed it
  it('a block D holds with no record of who put it, pushed by A, is refused to A', async () => {
    const [a, , d] = hosts
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    // stored on D as a pull stores it: not through the swarm's sink
    await d.store.put(cid, bytes)
    assert.deepEqual((await a.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId], 'D took A\'s push of it')
    const release = (peer: any): any => peer.network.c.release
    const before = d.release.refusals.notPut
    assert.equal((await release(a).ask(d.host.peerId, [cid])).size, 0, 'A\'s release refused')
    assert.equal(await d.store.has(cid), true, 'D kept it (left to GC)')
    assert.equal(d.release.refusals.notPut, before + 1)
  })

  // review36c: a record outlived its block when anything but a release deleted it (GC, a
  // handover, a pin's end, a local delete): the next writer of the same bytes was refused
  it('once D\'s store deletes a block (not a release), who put it goes with it: B, pushing the same bytes anew, releases them', async () => {
    const [a, b, d] = hosts
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    const held = await block(d, cid, bytes) // held with no record, pushed by A: nobody's
    assert.equal(held, true)
    assert.deepEqual((await a.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId])
    await d.store.delete(cid) // as GC deletes it
    assert.deepEqual((await b.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId], 'D took B\'s push')
    const release = (peer: any): any => peer.network.c.release
    assert.deepEqual([...await release(b).ask(d.host.peerId, [cid])], [cid.toString()], 'B\'s own release deletes it')
    assert.equal(await d.store.has(cid), false)
  })
})

/** Stores `bytes` on `d` as a pull does (not through the swarm's sink): whether it is held. */
async function block (d: any, cid: CID, bytes: Uint8Array): Promise<boolean> {
  await d.store.put(cid, bytes)
  return await d.store.has(cid)
}
