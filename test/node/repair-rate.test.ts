import assert from 'node:assert/strict'
import { DEFAULT_REPAIR_BYTES_PER_SECOND, MIN_REPAIR_BYTES_PER_SECOND, REPAIR_LINK_SHARE, repairRate } from '../../node/keeper/repair.ts'

// The default repair cap (node/keeper/repair.ts repairRate): a share of the host's data link
// when it is known, so that repair takes a fast link's worth and leaves a slow link room for
// reads and writes; the fixed fallback only when the link is not known.
describe('repairRate: the default repair cap (node/keeper/repair.ts)', function () {
  it('is a share of a known link, never below the floor, and the fallback when the link is unknown', () => {
    const gigabit = 125e6
    assert.equal(repairRate(gigabit), Math.floor(gigabit * REPAIR_LINK_SHARE))
    assert.ok(repairRate(10 * gigabit) > DEFAULT_REPAIR_BYTES_PER_SECOND, 'a fast link repairs faster than the fallback')
    assert.ok(repairRate(1e6) < DEFAULT_REPAIR_BYTES_PER_SECOND, 'a thin link leaves room for reads and writes')
    assert.equal(repairRate(1000), MIN_REPAIR_BYTES_PER_SECOND)
    assert.equal(repairRate(undefined), DEFAULT_REPAIR_BYTES_PER_SECOND)
    assert.equal(repairRate(0), DEFAULT_REPAIR_BYTES_PER_SECOND)
  })
})
