// The records the last clean stop kept (release-records.ts) across a daemon start that fails
// before its release is made (mend37g2, review37f): written back, not lost.
import assert from 'node:assert/strict'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startHost } from '../../harness/cluster.ts'
import { startDaemon, init } from '../../node/cli/index.ts'
import { RELEASE_RECORDS_FILE, saveReleaseRecords, takeReleaseRecords } from '../../node/keeper/release-records.ts'

describe('daemon start and the kept release records (mend37g2)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a start failing after the records were taken (bad capacityBytes), told nothing, writes them back', async () => {
    const dir = await tempDir(t)
    await init(dir, { newNetwork: true })
    const h = await startHost(t, dir, 'm37g2-a', [])
    const self = h.host.peerId
    await h.stop()
    // the stop's file, with one record in it (W put a block here)
    const kept = { block: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', by: 'W', pushed: ['W'], claimed: [], named: ['W'], unknown: false, aside: false }
    await saveReleaseRecords(dir, [kept], self)
    const file = join(dir, RELEASE_RECORDS_FILE)
    await assert.rejects(startDaemon({ dir, listen: ['/memory/m37g2-b'], join: [], capacityBytes: -1 }), /capacityBytes/)
    await access(file)
    assert.deepEqual(await takeReleaseRecords(dir, self), [kept], 'the record written back as it was')
  })
})
