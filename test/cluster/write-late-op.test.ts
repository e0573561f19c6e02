// A whole version built from a state read before a peer's op arrived, stamped after it
// (write36, found by review35d's probe): the `write` op's parents are the heads at its stamp, so
// it counted the peer's append as seen (crdt.ts: "a write that saw an append holds its bytes")
// though its content lacks it: the peer's acknowledged append was gone on every host. Each case:
// host 0 has writes pending on /f, host 1 changes /f and closes, host 0 receives that change
// (its open file keeps its pending state: OpenFile.rebase adopts nothing then), then closes.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { agreed, shared, treeOf } from '../helpers/file-pair.ts'
import { WHOLE_WRITE_TRIES } from 'darkfs'

const enc = new TextEncoder()
const dec = new TextDecoder()
const MiB = 1 << 20

type Host = Awaited<ReturnType<typeof startMesh>>[number]

async function appendFrom (h: Host, name: string, text: string): Promise<void> {
  const fa = await h.volume.open(`/${name}`, 'a')
  const r = enc.encode(text)
  await fa.write(r, 0, r.byteLength, 0)
  await fa.close()
}

describe('a whole write and a peer\'s op it did not read', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: Host[]
  before(async () => { hosts = await startMesh(t, 2) })

  it('an inline file written at 0 keeps a peer\'s append received before the close', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    await appendFrom(h1, 'inline', 'R\n')
    await until('host 0 has host 1\'s append', () => treeOf(h0, 'inline')?.size === 7)
    await fh.close()
    assert.equal(dec.decode(await agreed(h0, h1, 'inline')), 'Xaaa\nR\n')
  })

  it('a file truncated then written keeps a peer\'s append received before the close', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'cut', enc.encode('old contents\n'))
    const fh = await h0.volume.open('/cut', 'r+')
    await fh.truncate(0)
    await fh.write(enc.encode('new\n'), 0, 4, 0)
    await appendFrom(h1, 'cut', 'R\n')
    await until('host 0 has host 1\'s append', () => treeOf(h0, 'cut')?.size === 15)
    await fh.close()
    // the append did not see the truncate: it lands after the write's bytes
    assert.equal(dec.decode(await agreed(h0, h1, 'cut')), 'new\nR\n')
  })

  it('a large file\'s dense close keeps a peer\'s append received before it', async () => {
    const [h0, h1] = hosts
    const old = new Uint8Array(2 * MiB).fill(0x61)
    await shared(h0, h1, 'dense', old)
    const fh = await h0.volume.open('/dense', 'r+')
    // a whole chunk rewritten: past the patch bounds, a whole version
    const mine = new Uint8Array(MiB).fill(0x62)
    await fh.write(mine, 0, mine.byteLength, 0)
    await appendFrom(h1, 'dense', 'R\n')
    await until('host 0 has host 1\'s append', () => treeOf(h0, 'dense')?.size === 2 * MiB + 2, 60_000)
    await fh.close()
    const got = await agreed(h0, h1, 'dense')
    assert.equal(got.byteLength, 2 * MiB + 2)
    assert.ok(got.subarray(0, MiB).every(b => b === 0x62), 'host 0\'s chunk')
    assert.ok(got.subarray(MiB, 2 * MiB).every(b => b === 0x61), 'the old second chunk')
    assert.equal(dec.decode(got.subarray(2 * MiB)), 'R\n')
  })

  it('a large file\'s dense close keeps a peer\'s positioned writes received before it, its own bytes winning where they meet', async () => {
    const [h0, h1] = hosts
    const old = new Uint8Array(2 * MiB).fill(0x61)
    await shared(h0, h1, 'dense-pos', old)
    const fh = await h0.volume.open('/dense-pos', 'r+')
    const mine = new Uint8Array(MiB).fill(0x62)
    await fh.write(mine, 0, mine.byteLength, 0)
    // host 1 writes bytes of the second chunk, which host 0 did not write
    const fp = await h1.volume.open('/dense-pos', 'r+')
    await fp.write(enc.encode('PEER'), 0, 4, MiB + 100)
    // and 4 bytes across the end of host 0's chunk: host 0's, written later, win where they meet
    await fp.write(enc.encode('QQQQ'), 0, 4, MiB - 2)
    await fp.close()
    await until('host 0 has host 1\'s write', () => {
      const e = h0.tree.lookup('root', 'dense-pos')
      return (e === undefined ? undefined : h0.tree.get(e.inode)?.extents?.length ?? 0) as number > 0
    }, 60_000)
    await fh.close()
    const got = await agreed(h0, h1, 'dense-pos')
    assert.equal(got.byteLength, 2 * MiB)
    assert.ok(got.subarray(0, MiB).every(b => b === 0x62), 'host 0\'s chunk')
    assert.equal(dec.decode(got.subarray(MiB + 100, MiB + 104)), 'PEER')
    assert.equal(dec.decode(got.subarray(MiB - 2, MiB + 2)), 'bbQQ')
  })
  /**
   * `old` on both hosts; host 0 overwrites bytes [0, mine.length) and closes; before each stamp of
   * that close host 1 appends a line, and host 0 has it by then (the peer's op arriving while the
   * version was built). Returns the kinds of the commits tried and host 1's lines.
   */
  async function moving (name: string, old: Uint8Array, mine: Uint8Array): Promise<{ kinds: string[], lines: string[], got: Uint8Array }> {
    const [h0, h1] = hosts
    await shared(h0, h1, name, old)
    const fh = await h0.volume.open(`/${name}`, 'r+')
    await fh.write(mine, 0, mine.byteLength, 0)
    const id = h0.tree.lookup('root', name)?.inode as string
    const tree = h0.tree as unknown as { commitMany: (bodies: any[], ...rest: unknown[]) => Promise<unknown> }
    const commitMany = tree.commitMany.bind(tree)
    const lines: string[] = []
    const kinds: string[] = []
    tree.commitMany = async (bodies, ...rest) => {
      const write = bodies.find(b => b.inode === id && (b.type === 'write' || b.type === 'append'))
      if (write !== undefined) {
        kinds.push(write.type === 'write' ? 'write' : 'extent')
        const line = `R${lines.length}\n`
        const size = treeOf(h0, name)?.size as number
        await appendFrom(h1, name, line)
        lines.push(line)
        await until('host 0 has host 1\'s append', () => treeOf(h0, name)?.size === size + line.length, 60_000)
      }
      return await commitMany(bodies, ...rest)
    }
    try {
      await fh.close()
    } finally {
      tree.commitMany = commitMany
    }
    return { kinds, lines, got: await agreed(h0, h1, name) }
  }

  it('an inline file that keeps moving under each build: host 0\'s writes go as extents, every append kept', async () => {
    const { kinds, lines, got } = await moving('moving', enc.encode('aaaa\n'), enc.encode('X'))
    assert.deepEqual(kinds, [...new Array(WHOLE_WRITE_TRIES - 1).fill('write'), 'extent'])
    assert.equal(dec.decode(got), 'Xaaa\n' + lines.join(''))
  })

  it('a large file that keeps moving under each build: host 0\'s writes go as extents, every append kept', async () => {
    const { kinds, lines, got } = await moving('moving-big', new Uint8Array(2 * MiB).fill(0x61), new Uint8Array(MiB).fill(0x62))
    assert.deepEqual(kinds, [...new Array(WHOLE_WRITE_TRIES - 1).fill('write'), 'extent'])
    assert.equal(got.byteLength, 2 * MiB + lines.join('').length)
    assert.ok(got.subarray(0, MiB).every(b => b === 0x62), 'host 0\'s chunk')
    assert.ok(got.subarray(MiB, 2 * MiB).every(b => b === 0x61), 'the old second chunk')
    assert.equal(dec.decode(got.subarray(2 * MiB)), lines.join(''))
  })
})
