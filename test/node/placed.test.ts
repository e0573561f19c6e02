// The placement notice's codec (node/keeper/placed.ts): what a keeper takes off the wire.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { PLACED, PlacedProtocolError, MAX_PLACED_CHUNKS } from '../../node/keeper/placed.ts'

const cidOf = async (s: string): Promise<CID> => CID.create(1, 0x55, await sha256.digest(new TextEncoder().encode(s)))

describe('placement notices: the codec (node/keeper/placed.ts)', () => {
  it('takes chunks with their fragments and one holder list per fragment', async () => {
    const c = await cidOf('chunk')
    const f = [await cidOf('f0'), await cidOf('f1')]
    const [n] = PLACED.notice!([{ c, f, h: [['a'], ['b', 'c']] }])
    assert.ok(n.chunk.equals(c))
    assert.deepEqual(n.fragments.map(String), f.map(String))
    assert.deepEqual(n.holders, [['a'], ['b', 'c']])
  })

  it('refuses what is not a notice: no array, too many chunks, a holder list per fragment missing, holders not peer ids, fragments not CIDs', async () => {
    const c = await cidOf('chunk')
    const f = [await cidOf('f0'), await cidOf('f1')]
    for (const bad of [
      {},
      Array.from({ length: MAX_PLACED_CHUNKS + 1 }, () => ({ c, f, h: [[], []] })),
      [{ c, f, h: [['a']] }],
      [{ c, f, h: [['a'], [7]] }],
      [{ c, f, h: [['a'], ['']] }],
      [{ c, f: ['x', 'y'], h: [[], []] }],
      [{ c: 'x', f, h: [[], []] }],
      [{ c, f: [], h: [] }]
    ]) {
      assert.throws(() => PLACED.notice!(bad), PlacedProtocolError, JSON.stringify(bad).slice(0, 80))
    }
  })
})
