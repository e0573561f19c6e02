// A write given up asks every host to delete what it pushed (release.ts), and a host drops a
// released block that arrives in the minute after (a push of the abandoned write overtaken by
// its release). When another host writes the same bytes in that minute, its pushes are dropped
// on arrival too: acknowledged all the same, its chunk counted as placed with its fragments on
// the writer alone (review30f). A host acknowledges only what it keeps, and a writer counts a
// chunk placed only once its targets hold (and promised) their fragments: until then the chunk
// is pending and the writer keeps its data. Checked by where the fragments are, not by timing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { codedChunk, heldOn } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'

const MiB = 1 << 20

describe('a write of bytes another host gave up a moment ago (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  // promises end soon: A's own, made before it gave up, no longer keep X on the hosts then
  const { hosts } = meshSuite(6, { transport: 'tcp', daemon: { custodyPromiseMs: 1_000 } })

  it('A places chunk X and gives up, B writes X: B counts X placed only when every fragment is held, k of them besides B', async () => {
    const [, b, a] = hosts
    const { k, m, bytes: x, ref, key } = codedChunk(b)
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const where = async (on: ClusterHost[]): Promise<number[]> => await heldOn(ref, on)
    const others = hosts.filter(h => h !== b)

    async function * feedA (): AsyncGenerator<Uint8Array> {
      yield x
      await until('A placed X', () => a.network.holders(key)?.pending === false, 120_000)
      throw new Error('A gives up')
    }
    // the write's abandon asks every host to release X's fragments before the rejection
    await assert.rejects(a.volume.replaceFile('/a.bin', feedA(), { wait: 'safe' }), /A gives up/)
    assert.deepEqual(await where(hosts.filter(h => h !== a)), ref.fragments.map(() => 0), 'the hosts A pushed to released X')
    await until('the promises made to A ended', () => hosts.every(h => ref.fragments.every(f => !h.custody.promised(f))), 30_000)

    // B's write of X, looked at once its placement of X is over and before its commit (which
    // would make X needed on the hosts that hear of it, and so kept on arrival)
    let seen = ''
    async function * feedB (): AsyncGenerator<Uint8Array> {
      yield x
      await until('B\'s placement of X over', () => b.network.holders(key) !== undefined && !b.network.isPlacing(key), 120_000)
      const all = await where(hosts)
      const away = await where(others)
      const pending = b.network.holders(key)?.pending !== false
      seen = `X ${pending ? 'pending' : 'placed'} on B; hosts holding each fragment: ${all.join(', ')}; besides B: ${away.join(', ')}`
      console.log(`      ${seen}`)
      if (!pending) assert.ok(all.every(n => n > 0) && away.filter(n => n > 0).length >= k, `B counts X placed: ${seen}`)
      // still pending: B keeps X's data fragments (placed by the retries)
      else for (const f of ref.fragments.slice(0, k)) assert.ok(await b.store.has(f), `B keeps data fragment ${f.toString()} of the pending chunk`)
      yield randomBytes(MiB)
    }
    await b.volume.replaceFile('/b.bin', feedB(), { wait: 'safe' })
    assert.notEqual(seen, '', 'B\'s placement of X was looked at')
  })

  // only the asking host's late pushes are dropped on arrival: another writer's pushes of the
  // released bytes were dropped too, for as long as the release was remembered (a minute), and
  // its chunk stayed pending that long (review31b)
  it('A places chunk Y and gives up, B writes Y: B\'s settling placement of Y places it, every fragment held', async () => {
    const [, b, a] = hosts
    const { k, m, bytes: y, ref, key } = codedChunk(b)
    const where = async (on: ClusterHost[]): Promise<number[]> => await heldOn(ref, on)
    const others = hosts.filter(h => h !== b)
    async function * feedA (): AsyncGenerator<Uint8Array> {
      yield y
      await until('A placed Y', () => a.network.holders(key)?.pending === false, 120_000)
      throw new Error('A gives up')
    }
    await assert.rejects(a.volume.replaceFile('/a2.bin', feedA(), { wait: 'safe' }), /A gives up/)
    assert.deepEqual(await where(hosts.filter(h => h !== a)), ref.fragments.map(() => 0), 'the hosts A pushed to released Y')
    await until('the promises made to A ended', () => hosts.every(h => ref.fragments.every(f => !h.custody.promised(f))), 30_000)

    // looked at before B's commit (which makes Y needed on the hosts that hear of it, and so kept on arrival)
    let seen = ''
    async function * feedB (): AsyncGenerator<Uint8Array> {
      yield y
      await until('B\'s placement of Y started and over', () => b.network.holders(key) !== undefined && !b.network.isPlacing(key), 120_000)
      // a settling placement is over once the targets' promise round is (and once more after a refusal)
      await b.network.place([ref], { settle: true })
      const all = await where(hosts)
      const away = await where(others)
      seen = `hosts holding each fragment: ${all.join(', ')}; besides B: ${away.join(', ')}`
      assert.equal(b.network.holders(key)?.pending, false, `Y placed before B's commit; ${seen}`)
      assert.ok(all.every(n => n > 0) && away.filter(n => n > 0).length >= k, `every fragment held, k besides B: ${seen}`)
      yield randomBytes(MiB)
    }
    await b.volume.replaceFile('/b2.bin', feedB(), { wait: 'safe' })
    assert.notEqual(seen, '', 'B\'s placement of Y was looked at')
  })
})
