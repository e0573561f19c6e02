// A survey's have-queries (node/keeper/survey.ts): one a peer's stream limit refused for a
// moment is tried again; one whose peer could not be reached (a failed or timed-out dial) leaves
// the peer unanswered at once. Retried, a bounded network's surveys dialled each unreachable peer
// four times, most of the failed dials of an overloaded 30-host bench:scale run.
import assert from 'node:assert/strict'
import { SURVEY_TRIES, survey } from '../../node/keeper/survey.ts'
import { chunk } from '../helpers/repair-chunks.ts'

const named = (name: string): Error => Object.assign(new Error(name), { name })

describe('survey have-query retries (node/keeper/survey.ts)', function () {
  it('retries a peer whose streams were over their limit, not one that could not be reached', async () => {
    const ref = await chunk(0)
    const asked = new Map<string, number>()
    const unanswered = new Set<string>()
    const holdings = await survey({
      self: 'h0',
      hasLocal: async () => false,
      has: async (cids, peer) => {
        const n = (asked.get(peer) ?? 0) + 1
        asked.set(peer, n)
        // busy: refused by its stream limit once, then it answers
        if (peer === 'busy' && n === 1) throw named('TooManyOutboundProtocolStreamsError')
        if (peer === 'busy') return new Set([cids[0].toString()])
        if (peer === 'unreachable') throw named('TimeoutError')
        throw named('DialBackoffError')
      }
    }, [ref], ['h0', 'busy', 'unreachable', 'backing-off'], { unanswered })
    assert.equal(asked.get('busy'), 2)
    assert.equal(asked.get('unreachable'), 1)
    assert.equal(asked.get('backing-off'), 1)
    assert.ok(SURVEY_TRIES > 1)
    assert.deepEqual([...unanswered].sort(), ['backing-off', 'unreachable'])
    assert.deepEqual([...holdings.get(ref.fragments[0].toString())!], ['busy'])
  })
})
