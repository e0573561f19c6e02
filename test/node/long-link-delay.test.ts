// mend38m (review38e): the rotating long link's timer was a fixed interval from the start, so
// hosts started together drew, dialled and exchanged together every period. Each wait is now
// drawn afresh, uniform over 0.5 to 1.5 periods (longLinkDelay).
import assert from 'node:assert/strict'
import { LONG_LINK_MS, longLinkDelay } from '../../node/net/index.ts'

describe('long link delay (mend38m): each wait drawn over 0.5 to 1.5 periods', function () {
  it('spans half a period to one and a half, by the random draw', function () {
    assert.equal(longLinkDelay(2_000, 0), 1_000)
    assert.equal(longLinkDelay(2_000, 0.5), 2_000)
    assert.ok(longLinkDelay(2_000, 1 - Number.EPSILON) <= 3_000)
    assert.ok(longLinkDelay(LONG_LINK_MS, 0.999) > LONG_LINK_MS * 1.4)
  })

  it('hosts started together do not wait alike: draws spread over the whole range', function () {
    const waits = Array.from({ length: 200 }, () => longLinkDelay(1_000))
    assert.ok(waits.every(w => w >= 500 && w <= 1_500), `a wait outside 500-1500 ms: ${waits.join(',')}`)
    // 200 uniform draws: all within one tenth of the range has a chance below 1e-100
    assert.ok(Math.max(...waits) - Math.min(...waits) > 100, `waits bunched: ${waits.join(',')}`)
    assert.ok(new Set(waits).size > 20, 'waits repeat: a fixed period')
  })
})
