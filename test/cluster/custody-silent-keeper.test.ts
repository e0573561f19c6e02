// A keeper that gives no answer to the writer's custody round (unreachable, timed out, its
// custody stopped) is not a keeper that refused (review31b): counted as "does not hold it", the
// chunk went pending, its fragment was pushed to that keeper again in full, and the retry gap
// went back to its least, for as long as the keeper stayed silent. Only an explicit no (a keeper
// that answered and does not hold the block) places the chunk again; no answer keeps the record
// and the writer's copies. Checked by the pushes made and the chunk's state once a settling
// placement of it is over, not by timing.
import assert from 'node:assert/strict'
import { until } from '../../harness/cluster.ts'
import { codedChunk } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'


describe('a keeper that does not answer custody calls (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const { hosts } = meshSuite(6, { transport: 'tcp' })

  it('the chunk is placed, and its fragment pushed to the silent keeper once', async () => {
    const [w, p] = hosts
    const { k, m, bytes: x, ref, key } = codedChunk(w)
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const frags = new Set(ref.fragments.map(String))
    // p answers no custody call: its protocol is gone (each call fails at once)
    await p.custody.stop()
    const sw = (w.network as any).swarm
    const push = sw.push.bind(sw)
    let toSilent = 0
    sw.push = async (deliveries: Array<{ cid: { toString: () => string }, to: string[] }>, opts: unknown) => {
      for (const d of deliveries) if (frags.has(d.cid.toString()) && d.to.includes(p.host.peerId)) toSilent++
      return await push(deliveries, opts)
    }
    await w.volume.replaceFile('/a.bin', [x], { wait: 'safe' })
    // a settling placement of the chunk (a write's own) is over once its custody round is, and
    // once more if a keeper refused
    await w.network.place([ref], { settle: true })
    const held = (await Promise.all(ref.fragments.map(async f => await p.store.has(f)))).filter(Boolean).length
    assert.ok(held > 0, 'the silent keeper holds a fragment of X')
    assert.equal(w.network.holders(key)?.pending, false, 'X is placed (not pending again for a keeper that gave no answer)')
    assert.equal(toSilent, held, `pushes of X's fragments to the silent keeper: ${toSilent}, fragments it holds: ${held}`)
    await until('/a.bin seen on host 3', async () => await hosts[3].volume.stat('/a.bin').then(() => true, () => false), 60_000)
    assert.ok(Buffer.from(await hosts[3].volume.readFile('/a.bin')).equals(x), '/a.bin reads back on another host')
  })
})
