// Two writes of the same bytes on one host, the second starting while the first gives up
// (review31b): the first checks that no other write here has the chunk (OpenChunks), then asks
// every host to delete its fragments (release.ts). Promises to the asking host do not keep a
// block, so when the second write stored, pushed and had X promised meanwhile, the release
// deleted X everywhere and the second write's committed file could not be read. The second
// write now places X only once the release is over (ChunkService.releasing). The release
// requests wait at a gate until the second write stored X; checked by what a third host reads.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { until } from '../../harness/cluster.ts'
import { codedChunk, heldOn } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'

const MiB = 1 << 20

describe('a write of X on a host while another write of X there gives up (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const { hosts } = meshSuite(6, { transport: 'tcp' })

  it('the second write\'s file reads back X on a third host, and every fragment of X is held', async () => {
    const [, b, , r] = hosts
    const { k, m, bytes: x, ref, key } = codedChunk(b)
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const held = async (): Promise<number[]> => await heldOn(ref, hosts)
    const heldOnB = async (): Promise<number> => (await Promise.all(ref.fragments.map(async f => await b.store.has(f)))).filter(Boolean).length

    // b's release requests wait at a gate (a slow peer)
    const rel = (b.network as any).c.release
    const ask = rel.ask.bind(rel)
    const gate = Promise.withResolvers<void>()
    let asked = 0
    rel.ask = async (peer: string, cids: unknown, opts: unknown) => { asked++; await gate.promise; return await ask(peer, cids, opts) }

    async function * feed1 (): AsyncGenerator<Uint8Array> {
      yield x
      await until('write 1 placed X', () => b.network.holders(key)?.pending === false, 120_000)
      throw new Error('write 1 gives up')
    }
    const giving = assert.rejects(b.volume.replaceFile('/w1.bin', feed1(), { wait: 'safe' }), /gives up/)
    await until('write 1 release under way', () => asked > 0, 60_000)

    const chunks = b.volume.chunks as any
    async function * feed2 (): AsyncGenerator<Uint8Array> {
      yield x
      // write 2 stored X and either placed it and handed b's copies over (what the release then
      // deleted everywhere), or waits for the release to place it
      await until('write 2 placed X or waits for the release', async () =>
        (chunks.open.has(ref) === true && chunks.releasing.busy(ref) === true) || await heldOnB() < k, 60_000)
      gate.resolve()
      await giving
      yield randomBytes(MiB)
    }
    await b.volume.replaceFile('/w2.bin', feed2(), { wait: 'safe' })
    // placed again after the release: a settling placement of X finds it placed
    await b.network.place([ref], { settle: true })
    assert.equal(b.network.holders(key)?.pending, false, 'X placed on b')
    await until('w2 seen on r', async () => await r.volume.stat('/w2.bin').then(() => true, () => false), 60_000)
    const read = await r.volume.readFile('/w2.bin')
    assert.ok(Buffer.from(read).subarray(0, MiB).equals(x), 'w2 reads back X on r')
    const now = await held()
    assert.ok(now.filter(n => n > 0).length >= k, `fragments of X held (hosts per fragment): ${now.join(',')}`)
  })
})
