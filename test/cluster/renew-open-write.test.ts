// The targets of a placed chunk promise its writer to keep their fragments (custody.ts) for a
// while (CUSTODY_PROMISE_MS), and a write may stay open longer: a big or slow upload, a file
// written over minutes before its commit. Once the promises ended, another host that writes the
// same bytes and gives up had them deleted everywhere (release.ts spares only a block promised
// to someone else), and the first write committed a chunk with fewer than k fragments left. A
// write still open has its placed chunks' targets promise them again every half promise time
// (ChunkWrite), without pushing them again, also when the writer's placement record of the chunk
// is forgotten (placementRemembered). Checked by where the fragments are, not by timing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk } from '../../node/data/index.ts'

const MiB = 1 << 20
/** Short promises, renewed every half of it: the open write below outlives several. */
const custodyPromiseMs = 3_000

describe('a write open past several custody promise times vs another host writing the same chunk and giving up (six hosts, k=4 m=2)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startCluster(t, 6, { transport: 'tcp', daemon: { custodyPromiseMs } })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
  })

  /**
   * B writes X and stays open for three promise times; A writes X, places it and gives up; B
   * commits. Returns the bytes B's swarm sent while it stayed open (the renewals' pushes).
   */
  async function scenario (b: ClusterHost, a: ClusterHost, r: ClusterHost, path: string): Promise<{ sentOpen: number, fragment: number }> {
    const { k, m } = b.volume.chunks.params()
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const x = randomBytes(MiB)
    const y = randomBytes(MiB)
    const ref = encodeChunk(x, 0, k, m).ref
    const key = ref.cid!.toString()
    const held = async (): Promise<number[]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f)))).filter(Boolean).length))

    const go = Promise.withResolvers<void>()
    let placedB = 0
    async function * feedB (): AsyncGenerator<Uint8Array> {
      yield x
      await go.promise
      yield y
    }
    const writingB = b.volume.replaceFile(path, feedB(), { wait: 'safe', onProgress: p => { placedB = p.placed } })
    writingB.catch(() => {}) // awaited below
    // placed counts a chunk once its placement settled: handed over, and its targets' promises asked
    await until('B placed X', () => placedB >= MiB, 120_000)
    const before = await held()
    assert.ok(before.every(n => n > 0), `every fragment of X is on some host once B placed it: ${before.join(',')}`)

    // the promises B's placement was given end (the condition is the clock itself); B stays open
    const sentBefore = b.swarm.stats().bytesSent
    const ended = Date.now() + 3 * custodyPromiseMs
    await until('three promise times past B\'s placement', () => Date.now() >= ended, 60_000)
    const sentOpen = b.swarm.stats().bytesSent - sentBefore
    // B's renewals: some host still promises each fragment (a promise is given only for a block held)
    const promised = ref.fragments.map(f => hosts.filter(h => h.custody.promised(f)).length)
    assert.ok(promised.every(n => n > 0), `hosts promising each fragment of X, three promise times after B placed it: ${promised.join(',')} (none may be 0)`)

    // A writes the same bytes (its targets hold them: nothing to push), places them and gives
    // up: its release reaches every host before it rejects
    async function * feedA (): AsyncGenerator<Uint8Array> {
      yield x
      await until('A placed X', () => a.network.holders(key)?.pending === false, 120_000)
      throw new Error('A gives up')
    }
    await assert.rejects(a.volume.replaceFile(`${path}.a`, feedA(), { wait: 'safe' }), /A gives up/)
    const after = await held()
    assert.ok(after.every(n => n > 0), `hosts holding each fragment of X after A gave up, B still open: ${after.join(',')} (none may be 0)`)

    go.resolve()
    await writingB
    const committed = await held()
    assert.ok(committed.every(n => n > 0), `hosts holding each fragment of X once B committed: ${committed.join(',')}`)
    await until(`${path} seen on r`, async () => { try { await r.volume.stat(path); return true } catch { return false } }, 60_000)
    const read = await r.volume.readFile(path)
    assert.ok(Buffer.from(read).equals(Buffer.concat([x, y])), `${path} reads back as written`)
    return { sentOpen, fragment: Math.ceil(MiB / k) }
  }

  it('B\'s targets keep X through A\'s release: B renewed their promises while open, and B\'s file reads on a third host', async () => {
    const [, b, a, r] = hosts
    await scenario(b, a, r, '/b.bin')
  })

  it('with B\'s placement record of X forgotten, the renewal asks the targets and pushes nothing again', async () => {
    const [, , , r, b, a] = hosts
    const remembered = b.network.placementRemembered
    // every record forgotten as soon as its placement is over
    b.network.placementRemembered = 0
    try {
      const { sentOpen, fragment } = await scenario(b, a, r, '/c.bin')
      // a full push again would be five fragments each renewal; a promise round is a few CIDs
      assert.ok(sentOpen < fragment, `B's swarm sent ${sentOpen} bytes while open (a fragment is ${fragment})`)
    } finally {
      b.network.placementRemembered = remembered
    }
  })
})
