// What the op log syncs (node/volume.ts, "Durability"): a namespace or attribute change is
// written to the log, not synced; a file's commit (close, flush, fsync) syncs the log, and with
// it every change before it; fsync and syncDir() sync it also with nothing to commit.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { seededBytes } from '../../harness/prng.ts'

describe('Volume: which changes sync the op log', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  async function open (): Promise<{ vol: Volume, syncs: () => number, writes: () => number, unsynced: () => number }> {
    // no background sync within the test: every sync counted is one a call made
    const vol = await Volume.open({ dir: await tempDir(t), writtenSyncMs: 3600_000 })
    t.add(async () => { await vol.close() })
    return { vol, syncs: () => vol.tree.logCounters().syncs, writes: () => vol.tree.logCounters().writes, unsynced: () => vol.tree.logCounters().unsynced }
  }

  it('mkdir, create, chmod, rename, unlink and rmdir sync nothing; syncDir() syncs them, once', async () => {
    const { vol, syncs, unsynced } = await open()
    const s0 = syncs()
    await vol.mkdir('/d')
    for (let i = 0; i < 20; i++) await (await vol.open(`/d/f${i}`, 'w')).close()
    await vol.chmod('/d/f0', 0o600)
    await vol.rename('/d/f1', '/d/g1')
    for (let i = 2; i < 20; i++) await vol.unlink(`/d/f${i}`)
    await vol.mkdir('/e')
    await vol.rmdir('/e')
    assert.equal(syncs(), s0, 'no change alone synced the log')
    assert.ok(unsynced() > 0)
    await vol.syncDir('/d')
    assert.equal(syncs(), s0 + 1)
    assert.equal(unsynced(), 0)
    await vol.syncDir('/d')
    assert.equal(syncs(), s0 + 1, 'nothing left to sync')
  })

  it('writeFile (`darkfs put`) is durable when it returns, new file or rewrite, small or chunked', async () => {
    const { vol, unsynced } = await open()
    await vol.mkdir('/d')
    assert.ok(unsynced() > 0)
    for (const size of [100, 3 << 20]) {
      await vol.writeFile(`/d/f${size}`, seededBytes(size, size))
      assert.equal(unsynced(), 0, `a new file of ${size} bytes`)
      await vol.chmod(`/d/f${size}`, 0o600)
      await vol.writeFile(`/d/f${size}`, seededBytes(size, size + 1))
      assert.equal(unsynced(), 0, `a rewrite of ${size} bytes`)
    }
  })

  it("a small file's create, write and close sync the log once; fsync with nothing to commit syncs", async () => {
    const { vol, syncs, writes, unsynced } = await open()
    const s0 = syncs()
    const w0 = writes()
    for (let i = 0; i < 10; i++) {
      const fh = await vol.open(`/f${i}`, 'w')
      const bytes = seededBytes(1024 + i * 300, i)
      await fh.write(bytes, 0, bytes.length, 0)
      await fh.close()
      // its create is durable with its write's commit
      assert.equal(unsynced(), 0)
    }
    assert.equal(syncs(), s0 + 10)
    // each file: its create written, then its content written and synced
    assert.equal(writes(), w0 + 20)
    await vol.chmod('/f0', 0o600)
    assert.ok(unsynced() > 0)
    const fh = await vol.open('/f0', 'r')
    await fh.sync()
    assert.equal(unsynced(), 0)
    assert.equal(syncs(), s0 + 11)
    await fh.close()
  })
})
