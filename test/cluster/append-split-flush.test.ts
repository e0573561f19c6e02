// One O_APPEND write(2) can still reach the Volume as two writes (the kernel cuts a direct write
// at 1 MiB and at 256 pages of the caller's memory). Every handle of a file on one host shares one
// OpenFile, and a flush of another handle between the two halves committed the first half as an
// `append` op of its own: a peer's append made after it then sorted between the halves, inside
// the line (session 35's CI read "D2B239\n40\n"). A flush now commits another open handle's last
// appends only once that handle flushes or closes (append37).
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { shared, treeOf } from '../helpers/file-pair.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

type Host = Awaited<ReturnType<typeof startMesh>>[number]

async function appendFrom (h: Host, name: string, text: string): Promise<void> {
  const fa = await h.volume.open(`/${name}`, 'a')
  const r = enc.encode(text)
  await fa.write(r, 0, r.byteLength, 0)
  await fa.close()
}

/** The bytes of /name once both hosts read `size` bytes of it, alike. */
async function settled (hosts: Host[], name: string, size: number): Promise<string[]> {
  let got: string[] = []
  await until(`every host reads ${size} bytes of /${name}`, async () => {
    got = await Promise.all(hosts.map(async h => dec.decode(await h.volume.readFile(`/${name}`))))
    return got.every(s => s.length === size)
  }, 60_000)
  return got
}

describe('an append cut in two at the Volume, with another handle\'s flush between the halves', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: Host[]
  before(async () => { hosts = await startMesh(t, 2) })

  for (const how of ['flush', 'close'] as const) {
    it(`a ${how} of another handle keeps the first half back: a peer's append made meanwhile lands before the whole line on every host`, async () => {
      const [h0, h1] = hosts
      const name = `split-${how}`
      await shared(h0, h1, name, enc.encode('base\n'))
      const x = await h0.volume.open(`/${name}`, 'a')
      const y = await h0.volume.open(`/${name}`, 'a')
      // (the clock of the open file stopped: X's half is kept back however slow the machine: APPEND_KEEP_IDLE_MS)
      const open = (h0.volume as any).open_.get(treeOf(h0, name).id)
      open.now = () => 0
      await y.write(enc.encode('Y\n'), 0, 2, 0)
      // the first half of X's write(2)
      await x.write(enc.encode('D2B2'), 0, 4, 0)
      if (how === 'flush') await y.flush()
      else await y.close()
      // Y's own line is committed (host 1 has it); X's half is not
      await until('host 1 has Y\'s line', () => treeOf(h1, name)?.size >= 7)
      // a peer appends after seeing what host 0 committed, and host 0 receives it
      const seen = dec.decode(await h1.volume.readFile(`/${name}`))
      await appendFrom(h1, name, 'P\n')
      await until('host 0 has host 1\'s append', () => treeOf(h0, name)?.size === seen.length + 2)
      // the second half, then X's close
      await x.write(enc.encode('39\n'), 0, 3, 0)
      await x.close()
      if (how === 'flush') await y.close()
      const [a, b] = await settled([h0, h1], name, 16)
      assert.equal(a, 'base\nY\nP\nD2B239\n')
      assert.equal(b, a)
      assert.equal(seen, 'base\nY\n', 'host 1 had Y\'s line and nothing of X\'s before it appended')
    })
  }
})
