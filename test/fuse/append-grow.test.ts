// fuse/append-order.ts holds an O_APPEND piece that starts past the end it tracks. A plain write
// or an fallocate that grows the file moves the kernel's size (where its next append starts) but,
// before mend37a4, not that end: every append after such a growth waited the whole hold
// (review37l: 100 rounds of pwrite + append, 20.5 s). With a hold of a minute, an append after a
// growth must go at once (mocha's timeout bounds it; no time is measured).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { teardown, mountTemp, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

const ROUNDS = 5

describe('fuse: an O_APPEND write after a growth by other means is not held', function () {
  this.timeout(30_000)
  let t: Teardown
  let m: Mounted

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t, { appendHoldMs: 60_000 })
  })
  afterEach(async function () { await t.run() })

  it(`${ROUNDS} rounds of a pwrite at the end through one fd, then an append through another`, async function () {
    const f = join(m.dir, 'log')
    await ok(`python3 -c 'import os
w = os.open("${f}", os.O_WRONLY | os.O_CREAT, 0o644)
a = os.open("${f}", os.O_WRONLY | os.O_APPEND)
for i in range(${ROUNDS}):
    os.pwrite(w, b"p%d" % i, os.fstat(w).st_size)
    assert os.write(a, b"a%d\\n" % i) == 3
os.close(w); os.close(a)'`)
    const text = new TextDecoder().decode(await m.volume.readFile('/log'))
    assert.equal(text, Array.from({ length: ROUNDS }, (_, i) => `p${i}a${i}\n`).join(''))
  })

  it(`${ROUNDS} rounds of an fallocate past the end, then an append`, async function () {
    const f = join(m.dir, 'log')
    await ok(`python3 -c 'import os
a = os.open("${f}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(${ROUNDS}):
    os.posix_fallocate(a, os.fstat(a).st_size, 3)
    assert os.write(a, b"a%d\\n" % i) == 3
os.close(a)'`)
    const text = new TextDecoder().decode(await m.volume.readFile('/log'))
    assert.equal(text, Array.from({ length: ROUNDS }, (_, i) => `\0\0\0a${i}\n`).join(''))
  })
})
