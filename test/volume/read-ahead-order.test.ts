// A read of a chunk that was not fetched ahead (the first reads of a sequential run) asks for
// that chunk before the chunks ahead of it (OpenFile.baseChunk, cread44): asked after them, its
// fetch queued behind theirs everywhere (this host's disk reads in the threadpool, the holders'
// reads, the pulls), and the reader waited for a whole window of chunks before its first one (a
// cold read through six hosts: ~1 s before the first of 128 MiB on a loaded machine).
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20

/** 8 MiB whose chunks each have bytes of their own (equal chunks are one block, one fetch). */
function eightChunks (): Uint8Array {
  const data = new Uint8Array(8 * MiB)
  for (let i = 0; i < data.byteLength; i += 4096) { data[i] = (i / 4096) & 0xff; data[i + 1] = Math.floor(i / MiB) }
  return data
}

/** What `vol`'s chunk service is asked, in order, from a cold cache: `read N` and `ahead N` (chunk N). */
function asks (vol: Volume): string[] {
  vol.chunks.dropCache()
  const asked: string[] = []
  const chunks = vol.chunks
  const readChunk = chunks.readChunk.bind(chunks)
  const readAhead = chunks.readAhead.bind(chunks)
  chunks.readChunk = async (ref: ChunkRef, opts) => { asked.push(`read ${ref.offset / MiB}`); return await readChunk(ref, opts) }
  chunks.readAhead = (ref: ChunkRef, opts) => { asked.push(`ahead ${ref.offset / MiB}`); return readAhead(ref, opts) }
  return asked
}

describe('readahead: the chunk a read needs is asked for before the chunks ahead (cread44)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the second 1 MiB read of a file (the run\'s first sequential one) reads its chunk before fetching the next ones ahead', async () => {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    const data = eightChunks()
    const w = await vol.open('/s', 'w+')
    await w.write(data, 0, data.byteLength, 0)
    await w.close()
    const asked = asks(vol)
    const r = await vol.open('/s', 'r')
    t.add(async () => { await r.close() })
    const out = new Uint8Array(MiB)
    for (const at of [0, 1]) {
      const { bytesRead } = await r.read(out, 0, MiB, at * MiB)
      assert.equal(bytesRead, MiB)
      assert.ok(Buffer.from(out).equals(data.subarray(at * MiB, (at + 1) * MiB)), `the bytes of chunk ${at}`)
    }
    assert.ok(asked.includes('ahead 2'), `the second read is sequential: the chunks after it are fetched ahead (${asked.join(', ')})`)
    assert.ok(asked.indexOf('read 1') >= 0 && asked.indexOf('read 1') < asked.indexOf('ahead 2'), `chunk 1 asked for before the chunks ahead of it: ${asked.join(', ')}`)
  })

  it('readFile reads each chunk before fetching the ones ahead of it (review44b: it asked for them first)', async () => {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    const data = eightChunks()
    await vol.writeFile('/s', data)
    const asked = asks(vol)
    assert.ok(Buffer.from(await vol.readFile('/s')).equals(data))
    assert.ok(asked.includes('ahead 1'), `the chunks after the first fetched ahead (${asked.join(', ')})`)
    assert.ok(asked.indexOf('read 0') >= 0 && asked.indexOf('read 0') < asked.indexOf('ahead 1'), `chunk 0 asked for before the chunks ahead of it: ${asked.join(', ')}`)
  })
})
