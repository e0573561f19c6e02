// Hard links on a real mount: after link, unlink or a rename over one name, every remaining
// name of the file shows the new link count and the new ctime at once (the kernel caches each
// name's attributes separately: libfuse's path API gives every name its own kernel inode), and
// unlink changes the inode's ctime when links remain, as on ext4.
import assert from 'node:assert/strict'
import { teardown, mountTemp, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

/** `name: nlink ctime` of each name, as stat(1) prints them (ctime with nanoseconds). */
const STAT = (names: string): string => `for f in ${names}; do stat -c '%n: %h %z' "$f"; done`

/** Parses STAT's output into name -> { nlink, ctime }. */
function parse (out: string): Map<string, { nlink: number, ctime: string }> {
  const m = new Map<string, { nlink: number, ctime: string }>()
  for (const line of out.trim().split('\n')) {
    const [name, rest] = line.split(': ')
    const [nlink, ...ctime] = rest.split(' ')
    m.set(name, { nlink: Number(nlink), ctime: ctime.join(' ') })
  }
  return m
}

describe('mount: hard links', function () {
  this.timeout(60_000)
  let t: Teardown
  let m: Mounted

  // a long attribute cache, so a stale one shows rather than expires during the test
  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t, { attrTimeout: 30 })
  })
  afterEach(async function () { await t.run() })

  /** Runs `script` after stat'ing `names` (so the kernel caches them); returns both stats. */
  async function around (setup: string, names: string, script: string): Promise<{ before: ReturnType<typeof parse>, after: ReturnType<typeof parse> }> {
    const out = await ok(`${setup}\n${STAT(names)}; echo ---; sleep 0.05; ${script}\n${STAT(names)}`, { cwd: m.dir })
    const [b, a] = out.split('---\n')
    return { before: parse(b), after: parse(a) }
  }

  it('link a b: a shows nlink 2 and a new ctime at once', async function () {
    const { before, after } = await around('echo x > a', 'a', 'ln a b')
    assert.equal(before.get('a')!.nlink, 1)
    assert.equal(after.get('a')!.nlink, 2)
    assert.notEqual(after.get('a')!.ctime, before.get('a')!.ctime)
    assert.equal(await ok(STAT('b'), { cwd: m.dir }), `b: 2 ${after.get('a')!.ctime}\n`)
  })

  it('unlink of one of three names: the other two show nlink 2 and a new ctime at once', async function () {
    const { before, after } = await around('echo x > a && ln a b && ln a c', 'a b c', 'rm b')
    for (const n of ['a', 'c']) {
      assert.equal(before.get(n)!.nlink, 3, n)
      assert.equal(after.get(n)!.nlink, 2, n)
      assert.notEqual(after.get(n)!.ctime, before.get(n)!.ctime, `${n}: ctime changes with the unlink`)
    }
    assert.equal(after.get('a')!.ctime, after.get('c')!.ctime)
  })

  it('rename x over b, a link of a: a shows nlink 1 and a new ctime at once', async function () {
    const { before, after } = await around('echo x > a && ln a b && echo y > x && stat x >/dev/null', 'a b', 'mv x b')
    assert.equal(before.get('a')!.nlink, 2)
    assert.equal(after.get('a')!.nlink, 1)
    assert.notEqual(after.get('a')!.ctime, before.get('a')!.ctime)
    assert.equal(await ok('cat a b', { cwd: m.dir }), 'x\ny\n')
  })

  it('a renamed link, then unlink of the other name: the new name shows nlink 1 at once', async function () {
    const { after } = await around('echo x > a && ln a b && stat b >/dev/null && mv b d', 'a d', 'rm a')
    assert.equal(after.get('d')!.nlink, 1)
  })

  it('a link in a renamed directory, then unlink of the other name: the link shows nlink 1 at once', async function () {
    const { before, after } = await around('mkdir dir && echo x > a && ln a dir/b && stat dir/b >/dev/null && mv dir dir2', 'a dir2/b', 'rm a')
    assert.equal(before.get('dir2/b')!.nlink, 2)
    assert.equal(after.get('dir2/b')!.nlink, 1)
    assert.notEqual(after.get('dir2/b')!.ctime, before.get('dir2/b')!.ctime)
  })

  it('link, then unlink of the new name: the first name is back to nlink 1 with a ctime newer again', async function () {
    const out = await ok(`echo x > a; ${STAT('a')}; sleep 0.05; ln a b; ${STAT('a')}; sleep 0.05; rm b; ${STAT('a')}`, { cwd: m.dir })
    const [s1, s2, s3] = out.trim().split('\n').map(l => parse(l).get('a')!)
    assert.deepEqual([s1.nlink, s2.nlink, s3.nlink], [1, 2, 1])
    assert.ok(s1.ctime < s2.ctime && s2.ctime < s3.ctime, `ctimes ${s1.ctime} < ${s2.ctime} < ${s3.ctime}`)
  })
})
