// A write given up asks every host to delete the fragments it pushed (release.ts). When another
// host wrote the same bytes and placed them, not committed yet, those fragments are that write's
// too: the giving up must not delete them (review30d: it deleted up to three of six at k=4 m=2,
// and the other write's committed file could not be read). The placing writer has every target
// of the chunk promise its fragment (custody.keep), and a release spares a block promised to
// anyone but the asker. Checked by where the fragments are, not by timing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { until } from '../../harness/cluster.ts'
import { codedChunk, heldOn } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'

const MiB = 1 << 20

describe('a write given up vs another host\'s placed, uncommitted write of the same chunk (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const { hosts } = meshSuite(6, { transport: 'tcp' })

  it('B places chunk X, A writes X and gives up, B commits: every fragment of X is still held and B\'s file reads on a third host', async () => {
    const [, b, a, r] = hosts
    const { k, m, bytes: x, ref, key } = codedChunk(b)
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const y = randomBytes(MiB)
    const held = async (): Promise<number[]> => await heldOn(ref, hosts)

    // B writes X then waits (its write open, not committed) until told to go on
    const go = Promise.withResolvers<void>()
    let placedB = 0
    async function * feedB (): AsyncGenerator<Uint8Array> {
      yield x
      await go.promise
      yield y
    }
    const writingB = b.volume.replaceFile('/b.bin', feedB(), { wait: 'safe', onProgress: p => { placedB = p.placed } })
    writingB.catch(() => {}) // awaited below
    // placed counts a chunk once its placement settled: handed over, and its targets' promises asked
    await until('B placed X', () => placedB >= MiB, 120_000)
    const before = await held()
    assert.ok(before.every(n => n > 0), `every fragment of X is on some host once B placed it: ${before.join(',')}`)

    // A writes the same bytes, places them and gives up: its release reaches every host before it rejects
    async function * feedA (): AsyncGenerator<Uint8Array> {
      yield x
      await until('A placed X', () => a.network.holders(key)?.pending === false, 120_000)
      throw new Error('A gives up')
    }
    await assert.rejects(a.volume.replaceFile('/a.bin', feedA(), { wait: 'safe' }), /A gives up/)
    const after = await held()
    assert.ok(after.every(n => n > 0), `hosts holding each fragment of X after A gave up: ${after.join(',')} (none may be 0)`)

    go.resolve()
    await writingB
    await until('b.bin seen on r', async () => { try { await r.volume.stat('/b.bin'); return true } catch { return false } }, 60_000)
    const read = await r.volume.readFile('/b.bin')
    assert.ok(Buffer.from(read).equals(Buffer.concat([x, y])), 'b.bin reads back as written')
  })

  it('one host writes X twice at once and gives the second write up: the first keeps X\'s fragments on the other hosts and commits', async () => {
    const [, b, , r] = hosts
    const { k, m, bytes: x, ref } = codedChunk(b)
    const y = randomBytes(MiB)
    const others = hosts.filter(h => h !== b)
    const away = async (): Promise<number[]> => await heldOn(ref, others)
    // enough of X on the other hosts that it survives the loss of its writer
    const survives = (on: number[]): boolean => on.filter(n => n > 0).length >= k

    const go = Promise.withResolvers<void>()
    let placed1 = 0
    async function * feed1 (): AsyncGenerator<Uint8Array> {
      yield x
      await go.promise
      yield y
    }
    const writing1 = b.volume.replaceFile('/b1.bin', feed1(), { wait: 'safe', onProgress: p => { placed1 = p.placed } })
    writing1.catch(() => {}) // awaited below
    await until('the first write placed X', () => placed1 >= MiB, 120_000)
    const before = await away()
    assert.ok(survives(before), `X on the other hosts once placed: ${before.join(',')}`)

    // the second write of X on the same host places it too (its record: nothing to push) and
    // gives up: its release reaches every host before it rejects. Promises are per peer, and
    // both writes are this host's: only the count of writes here having X keeps it
    let placed2 = 0
    async function * feed2 (): AsyncGenerator<Uint8Array> {
      yield x
      await until('the second write placed X', () => placed2 >= MiB, 120_000)
      throw new Error('the second write gives up')
    }
    await assert.rejects(b.volume.replaceFile('/b2.bin', feed2(), { wait: 'safe', onProgress: p => { placed2 = p.placed } }), /gives up/)
    const after = await away()
    assert.ok(survives(after), `X on the other hosts after the second write gave up: ${after.join(',')}`)

    go.resolve()
    await writing1
    await until('b1.bin seen on r', async () => { try { await r.volume.stat('/b1.bin'); return true } catch { return false } }, 60_000)
    const read = await r.volume.readFile('/b1.bin')
    assert.ok(Buffer.from(read).equals(Buffer.concat([x, y])), 'b1.bin reads back as written')
  })
})
