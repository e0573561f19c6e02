// Two writes of the same bytes on one host: the first commits, the second gives up just after
// (review31g). Until the first committed, the count of writes here having the chunk (OpenChunks)
// kept the second's give-up from releasing it; once committed, only the tree references it, and
// the hosts that had not seen that commit yet deleted their fragments when the release asked
// (promises are per peer: both writes are this host's). Now a write given up leaves out of its
// release (and keeps here) what this host's own tree references. Four peers are kept from seeing
// the commit by stopping their sync (no op reaches them): checked by where the fragments are,
// not by timing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk } from '../../node/data/index.ts'

const MiB = 1 << 20

describe('a write committing vs another write of the same bytes on the same host giving up (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startCluster(t, 6, { transport: 'tcp' })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
  })

  it('the first commits while the peers have not seen it, the second gives up: X stays on the other hosts and the file reads on a third host', async () => {
    const [, b, , r] = hosts
    const { k, m } = b.volume.chunks.params()
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const x = randomBytes(MiB)
    const ref = encodeChunk(x, 0, k, m).ref
    const others = hosts.filter(h => h !== b)
    const away = async (): Promise<number[]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(others.map(async h => await h.store.has(f)))).filter(Boolean).length))
    // enough of X on the other hosts that it survives the loss of its writer
    const survives = (on: number[]): boolean => on.filter(n => n > 0).length >= k

    // the second write has X placed and waits (open) until the first committed
    const go = Promise.withResolvers<void>()
    let placed2 = 0
    async function * feed2 (): AsyncGenerator<Uint8Array> {
      yield x
      await go.promise
      throw new Error('the second write gives up')
    }
    const writing2 = b.volume.replaceFile('/b2.bin', feed2(), { wait: 'safe', onProgress: p => { placed2 = p.placed } })
    writing2.catch(() => {}) // awaited below
    await until('the second write placed X', () => placed2 >= MiB, 120_000)

    // four of the five peers see no op from now on (their sync stopped for good: it does not
    // start again); r does, and reads the file at the end
    const deaf = others.filter(h => h !== r)
    await Promise.all(deaf.map(async h => { await h.sync.stop() }))
    await b.volume.replaceFile('/b1.bin', [x], { wait: 'safe' })
    const before = await away()
    assert.ok(survives(before), `X on the other hosts once the first write committed: ${before.join(',')}`)
    const seen = await Promise.all(deaf.map(async h => await h.volume.stat('/b1.bin').then(() => true, () => false)))
    assert.ok(seen.every(s => !s), `the four peers have not seen the first write's commit: ${seen.join(',')}`)

    // the second write gives up: its release reaches every host before it rejects
    go.resolve()
    await assert.rejects(writing2, /gives up/)
    const after = await away()
    assert.ok(survives(after), `X on the other hosts after the second write gave up, the commit unseen on four: ${after.join(',')}`)
    // b1.bin reads on r
    await until('b1.bin seen on r', async () => await r.volume.stat('/b1.bin').then(() => true, () => false), 60_000)
    const read = await r.volume.readFile('/b1.bin')
    assert.ok(Buffer.from(read).equals(x), 'b1.bin reads back as written')
  })
})
