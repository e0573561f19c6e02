// An fsync's small write rides inline in its op, and the op goes out from its author about once
// (issue 15, DESIGN.md §4: a host on a thin uplink uploads each byte about once): the hold ask
// carries it to one peer, which publishes it on gossip for the author (net/sync.ts "Relay"). The
// author gossiped the op to every peer itself before, on top of the ask: five copies here, six on
// six hosts. And every host still gets the op when its author is gone once the fsync returned.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FEATURE_HOLD, HOLD_PROTOCOL, OPS_PROTOCOL } from '../../node/net/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import type { CID } from 'multiformats/cid'

const HOSTS = 5
const MiB = 1 << 20
/** The protocols that carry ops: gossip (gossipsub's stream), hold asks, and pushes and fetches. */
const OP_PROTOCOLS = ['/meshsub/1.2.0', HOLD_PROTOCOL, OPS_PROTOCOL]

/** Bytes `h` wrote on the protocols that carry ops. */
function opBytesSent (h: ClusterHost): number {
  const p = h.host.traffic().protocols
  return OP_PROTOCOLS.reduce((sum, name) => sum + (p[name]?.sent ?? 0), 0)
}

type Handle = Awaited<ReturnType<ClusterHost['volume']['open']>>

/** A cluster whose hosts all gossip to each other and take hold asks; a 1 MiB file on it, synced (`model`: its bytes). */
async function cluster (t: Teardown): Promise<{ hosts: ClusterHost[], fh: Handle, model: Buffer }> {
  const hosts = await startCluster(t, HOSTS)
  await until('full mesh', () => hosts.every(h => h.host.peers().length === HOSTS - 1), 60_000)
  await until('every host gossips to and takes hold asks from every other', () => hosts.every(h =>
    h.host.gossip.subscribers().length === HOSTS - 1 && h.host.peers().every(p => h.features.supports(p.id, FEATURE_HOLD))), 60_000)
  const fh = await hosts[0].volume.open('/db', 'w+')
  t.add(async () => { await fh.close().catch(() => {}) })
  const model = randomBytes(MiB)
  await fh.write(model, 0, MiB, 0)
  await fh.sync()
  return { hosts, fh, model }
}

/** 16 random 4 KiB pages written anywhere in the file (not yet synced): one op of 64 KiB inline on the fsync. */
async function pages (fh: Handle, model: Buffer): Promise<void> {
  for (let i = 0; i < 16; i++) {
    const page = randomBytes(4096)
    const at = i * (MiB / 16) + (i * 4096) % (MiB / 16 - 4096)
    await fh.write(page, 0, page.byteLength, at)
    page.copy(model, at)
  }
}

describe('cluster: an fsync\'s small write goes out from its author once', function () {
  this.timeout(180_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it(`on ${HOSTS} hosts the author uploads the fsync's op about once (the holder publishes it), and every host gets it`, async () => {
    const { hosts, fh, model } = await cluster(t)
    const [a, ...others] = hosts
    await pages(fh, model)
    // the ops the fsync makes (its write op; a fold or another op of the file may come with it)
    const made: Array<{ cid: CID, bytes: number }> = []
    const stop = onEachOp(a.tree, (op, local) => { if (local) made.push({ cid: op.cid, bytes: op.bytes.byteLength }) })
    const before = opBytesSent(a)
    const handed = a.sync.stats().handedOps
    const relayed = (): number => others.reduce((n, h) => n + h.sync.stats().relayedOps, 0)
    const relayedBefore = relayed()
    const returned = a.sync.stats().returnedOps
    await fh.sync()
    stop()
    const opBytes = made.reduce((n, op) => n + op.bytes, 0)
    assert.ok(opBytes > 64 * 1024, `the pages ride inline in the ops (${opBytes} bytes in ${made.length})`)
    await until('every host has the ops', () => others.every(h => made.every(op => h.tree.hasOp(op.cid))), 30_000)
    const sent = opBytesSent(a) - before
    // the hold ask's copy, and a little of gossip's control messages (each op went out at least
    // HOSTS - 1 times before: the ask, and a gossip copy to every peer)
    assert.ok(sent < 1.5 * opBytes, `the author sent ${sent} bytes of ops for ops of ${opBytes} (${(sent / opBytes).toFixed(2)}x)`)
    assert.ok(sent >= opBytes, 'the ops went out from their author once')
    // counted as the author's queue comes to the op, and as the holder's message goes out (a
    // host may have taken the op by then another way: a reconcile on a connection made meanwhile)
    await until('a holder published the op for its author', () => a.sync.stats().handedOps > handed && relayed() > relayedBefore, 30_000)
    // the holder's message comes back to the author too (gossipsub sends to every subscribed
    // peer): its own ops are known there by their bytes, not hashed and looked up as a peer's
    await until('the author knew its ops in the holder\'s message', () => a.sync.stats().returnedOps > returned, 30_000)
  })

  it('every host gets the op of an fsync whose author stops as soon as the fsync returns', async () => {
    const { hosts, fh, model } = await cluster(t)
    const [a, ...others] = hosts
    await pages(fh, model)
    await fh.sync()
    const cid = a.tree.newestLocal()!
    await a.stop()
    await until('every host left has the op', () => others.every(h => h.tree.hasOp(cid)), 30_000)
    // and its bytes, which rode in it: the file reads as written without its author
    for (const h of others) assert.ok(Buffer.compare(Buffer.from(await h.volume.readFile('/db')), model) === 0, `${h.name} reads the file as written`)
  })
})
