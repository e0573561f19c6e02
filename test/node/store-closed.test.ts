// A block store that is closed, or whose data dir was removed under it, stores nothing: a put
// then fails with a clear error and makes no directory. (Hosts torn down by tests left
// /tmp/darkfs-cluster-*/h0/store/blocks/<shard>/ behind: a fragment that arrived as its host
// stopped was written after the test removed the host's dir, the write making the path again.)
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { access, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Store, cidOf } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const block = (n: number): { cid: ReturnType<typeof cidOf>, bytes: Uint8Array } => { const bytes = randomBytes(n); return { cid: cidOf(bytes), bytes } }
const exists = async (path: string): Promise<boolean> => await access(path).then(() => true, () => false)

describe('Store after close, or with its data dir gone', function () {
  this.timeout(30_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a put after close is refused with a clear error and writes nothing', async () => {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    const kept = block(4096)
    await store.put(kept.cid, kept.bytes)
    await store.close()
    const late = block(4096)
    await assert.rejects(store.put(late.cid, late.bytes), (err: any) => err.code === 'EIO' && /closed/.test(err.message))
    const files = (await readdir(join(dir, 'blocks'), { recursive: true })).map(String).filter(n => n.endsWith('.data'))
    assert.equal(files.length, 1, `only the block put before close is on disk: ${files.join(', ')}`)
    const again = await Store.open(dir)
    t.add(async () => { await again.close() })
    assert.deepEqual(Buffer.from(await again.get(kept.cid)), Buffer.from(kept.bytes))
  })

  it('a put into a store whose data dir was removed fails and does not make the dir again', async () => {
    const parent = await tempDir(t)
    const dir = join(parent, 'store')
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await rm(dir, { recursive: true, force: true })
    const b = block(4096)
    await assert.rejects(store.put(b.cid, b.bytes), (err: any) => err.code === 'ENOENT')
    assert.equal(await exists(dir), false, 'the removed data dir was made again')
  })
})
