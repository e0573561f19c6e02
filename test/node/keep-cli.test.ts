import assert from 'node:assert/strict'
import { healShortfall, progressLine, parseFailureTimeout } from '../../node/cli/keep-cli.ts'

describe('darkfs heal/leave output (node/keep-cli.ts)', () => {
  const progress = { running: false, chunks: 8, checked: 8, fragmentsRepaired: 12, bytesPushed: 4096, bytesFetched: 0, failed: 0, dropped: 0 }

  it('progressLine() draws a full bar with the counts', () => {
    assert.equal(progressLine(progress), `[${'#'.repeat(30)}] 8/8 chunks, 12 fragments repaired (4096 bytes)`)
  })

  it('healShortfall() is undefined when every chunk is redundant, or for a result without counts (leave)', () => {
    assert.equal(healShortfall({ ...progress, passes: 1, remaining: { total: 8, redundant: 8, degraded: 0, localOnly: 0, lost: 0 } }), undefined)
    assert.equal(healShortfall({ passes: 2, progress }), undefined)
  })

  it('healShortfall() names what is still short, of how many, after how many passes', () => {
    assert.equal(
      healShortfall({ ...progress, passes: 5, remaining: { total: 8, redundant: 5, degraded: 2, localOnly: 0, lost: 1 } }),
      'heal: 2 degraded, 1 lost (fewer than k fragments left anywhere) of 8 chunks after 5 pass(es); see darkfs status'
    )
  })

  it('parseFailureTimeout() takes seconds, rejects junk', () => {
    assert.equal(parseFailureTimeout('2.5'), 2500)
    assert.equal(parseFailureTimeout(undefined), undefined)
    assert.throws(() => parseFailureTimeout('-1'), { name: 'UsageError' })
    assert.throws(() => parseFailureTimeout('soon'), { name: 'UsageError' })
  })
})
