// Merge on reconnect fetches each op once (issue 15 item 8): two in-process hosts apart long
// enough to make OPS tree ops each. When they reconnect, each reconciles with the other (rbsr,
// then one large fetch of what it lacks), and each pushes the other its heads (a push owed since
// the partition). A pushed head's parents are what the reconcile is fetching: the host waits for
// the reconcile, not walks down from the head meanwhile (that walk fetched the same ops again,
// in a receive per batch: each host's tree took in about twice the blocks it lacked).
import assert from 'node:assert/strict'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { isolate } from '../../harness/partition.ts'
import { Teardown } from '../../harness/tmp.ts'
import type { OpBody } from '../../node/tree/index.ts'

/** Tree ops each side makes while apart. */
const OPS = 3000

const enc = new TextEncoder()
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const heads = (h: ClusterHost): string => h.tree.heads().map(c => c.toString()).sort().join()

/** `n` file creates in `home`, 64 in flight at a time (as a busy host makes them). */
async function make (h: ClusterHost, home: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, n - i) }, async (_, j) => {
      const text = `${h.name}-${i + j}`
      const body: OpBody = { type: 'create', parent: home, name: `f${i + j}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(text) }, size: text.length, time: now() }
      await h.tree.commit(body)
    }))
  }
}

describe('merge on reconnect: each op fetched once', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('after a partition, each host\'s tree receives about the blocks it lacked, not them twice', async () => {
    let [a, b] = await startCluster(t, 2)
    await until('the two hosts see each other', () => a.host.peers().length === 1 && b.host.peers().length === 1)
    await a.volume.mkdir('/a')
    await a.volume.mkdir('/b')
    await until('b has the starting point', () => heads(a) === heads(b))
    b = await isolate(t, b, [a])
    const homeA = (a.tree.lookup(a.tree.root, 'a') as { inode: string }).inode
    const homeB = (b.tree.lookup(b.tree.root, 'b') as { inode: string }).inode
    await Promise.all([make(a, homeA, OPS), make(b, homeB, OPS)])
    const before = { a: a.tree.receiveStats(), b: b.tree.receiveStats() }
    await b.host.dial(a.address)
    await until('both hosts hold the same ops', () => heads(a) === heads(b), 240_000)
    // (a receive counts its ops applied once their write is done, after they show in the heads)
    const applied = (h: ClusterHost, name: 'a' | 'b'): number => h.tree.receiveStats().applied - before[name].applied
    await until('each host applied the other side\'s ops', () => applied(a, 'a') >= OPS && applied(b, 'b') >= OPS, 60_000)
    for (const [name, h] of [['a', a], ['b', b]] as const) {
      const s = h.tree.receiveStats()
      const lacked = s.applied - before[name].applied
      assert.ok(lacked >= OPS, `${name} applied the other side's ${OPS} ops (${lacked})`)
      const blocks = s.ops - before[name].ops
      // the pushed heads come on top (a push carries the heads: a few dozen ops), never the
      // thousands of a second fetch
      assert.ok(blocks < lacked * 1.25, `${name}'s tree received ${blocks} op blocks for the ${lacked} it lacked`)
    }
  })
})
