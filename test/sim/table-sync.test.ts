// The sim's member-table sync after outages (harness/sim/table-sync.ts: darkfs's MemberTable and
// members.ts pullMembers, the rule member-service.ts runs): a host back from any outage of the
// churn trace's mix is in step with its peer after one pull, never the whole table, and pulls
// less than the table on average; with main's rule before (table answers of records only) some
// of the same outages left it apart (the member whose DOWN notice it missed was still down).
import assert from 'node:assert/strict'
import { runTableSync } from '../../harness/sim/table-sync.ts'

describe('sim member-table sync after outages', function () {
  this.timeout(120_000)

  it('200 hosts, 40 outages at the churn trace\'s rates: in step after each, by the changes alone', async function () {
    const f = await runTableSync({ hosts: 200, seed: 14, goneHostHour: 14571 / 720_000, returnedHostHour: 14328 / 720_000, downShare: 0.15, outages: 40 })
    assert.equal(f.apart, 0)
    assert.equal(f.wholeTables, 0)
    assert.ok(f.missedMean > 0)
    assert.ok(f.pulledBytesMean < f.tableBytes / 2, `${f.pulledBytesMean} of ${f.tableBytes}`)
    assert.ok(f.apartBefore > 0, 'main\'s rule left the host apart after some outages')
  })
})
