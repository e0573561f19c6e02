// Hard links on a real mount: after link, unlink or a rename over one name, every remaining
// name of the file shows the new link count and the new ctime at once (the kernel caches each
// name's attributes separately: libfuse's path API gives every name its own kernel inode), and
// unlink changes the inode's ctime when links remain, as on ext4.
import assert from 'node:assert/strict'
import { teardown, mountTemp, mountEach, ok } from '../helpers/fuse-mount.ts'
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

// A write through one name of a hard-linked file, with the fd still open: every other name shows
// the new size and mtime at once, and reads through it give the new bytes, as on ext4 (one inode
// there; libfuse gives each name its own kernel inode here, each with its own cached attributes
// and pages). Found by model.test.ts (seeds 1, 4, 5, 10).
describe('mount: a write through one name of a hard-linked file, before its close', function () {
  this.timeout(60_000)
  // a long attribute cache, so a stale size of the other name shows rather than expires
  const here = mountEach({ attrTimeout: 30 })

  /**
   * Runs python `body` with `fa` open on a (flags) and `fb` open O_RDONLY on b, a hard link of a
   * holding 3000 bytes that b's stat and a read through fb have cached; prints what `body` prints.
   */
  async function linked (flags: string, body: string): Promise<string> {
    const { m } = here()
    const py = [
      'import os',
      'fb = os.open("b", os.O_RDONLY)',
      'assert len(os.pread(fb, 4096, 0)) == 3000',
      'os.stat("b")',
      `fa = os.open("a", ${flags})`,
      'def st(n): s = os.stat(n); return "%d %d" % (s.st_size, s.st_mtime_ns)',
      ...body.split('\n'),
      'os.close(fa)',
      'os.close(fb)'
    ].join('\n')
    await ok('head -c 3000 /dev/zero > a && ln a b', { cwd: m.dir })
    return await ok(`python3 -c '${py}'`, { cwd: m.dir })
  }

  // through the page cache (pwrite on O_RDWR), and direct (an O_APPEND handle: fuse/binding.c)
  for (const [what, flags, write] of [['O_RDWR', 'os.O_RDWR', 'os.pwrite(fa, b"xyz", 3000)'], ['O_WRONLY|O_APPEND', 'os.O_WRONLY | os.O_APPEND', 'os.write(fa, b"xyz")']]) {
    it(`${what}: a write past the end through a: b shows a's size and mtime, and reads the new bytes`, async function () {
      const out = await linked(flags, [
        write,
        'print(st("a"), st("b"), os.pread(fb, 10, 2998))',
        'print(os.pread(os.open("b", os.O_RDONLY), 10, 2998))'
      ].join('\n'))
      const [first, second] = out.trim().split('\n')
      const [sa, ma, sb, mb, read] = first.split(' ')
      assert.equal(sa, '3003')
      assert.deepEqual([sb, mb], [sa, ma], 'b: size and mtime as a\'s')
      assert.equal(read, 'b\'\\x00\\x00xyz\'', 'read through an fd of b open before the write')
      assert.equal(second, 'b\'\\x00\\x00xyz\'', 'read through an fd of b opened after the write')
    })
  }

  it('a write inside the file through a: b reads the new bytes (its pages were cached)', async function () {
    const out = await linked('os.O_RDWR', 'os.pwrite(fa, b"xyz", 100)\nprint(st("a") == st("b"), os.pread(fb, 5, 99))')
    assert.equal(out, 'True b\'\\x00xyz\\x00\'\n')
  })

  it('a renamed to x after the open, then a write past the end: b shows x\'s size and mtime', async function () {
    const out = await linked('os.O_RDWR', 'os.rename("a", "x")\nos.stat("b")\nos.pwrite(fa, b"xyz", 3000)\nprint(st("x") == st("b"), st("b").split()[0])')
    assert.equal(out, 'True 3003\n')
  })

  it('writes through a and b at once, from four threads: all are answered, none waits on another\'s refresh', async function () {
    // each write's answer waits for the other name's refresh, which waits for the pages a write
    // in flight through that name holds: two such writes waited for each other (to the deadline)
    const { m } = here()
    const py = [
      'import os, threading',
      'def w(n):',
      '  fd = os.open(n, os.O_RDWR)',
      '  for i in range(200): assert os.pwrite(fd, b"x" * 9000, (i * 4096) % 200000) == 9000',
      '  os.close(fd)',
      'ts = [threading.Thread(target=w, args=(n,)) for n in ("a", "b", "a", "b")]',
      '[t.start() for t in ts]',
      '[t.join() for t in ts]',
      's = os.stat("a"), os.stat("b")',
      'print(s[0].st_size, s[1].st_size)'
    ].join('\n')
    await ok('head -c 300000 /dev/zero > a && ln a b', { cwd: m.dir })
    assert.equal(await ok(`python3 -c '${py}'`, { cwd: m.dir }), '300000 300000\n')
  })

  it('ftruncate and fallocate growth through a: b shows the new size at once', async function () {
    const out = await linked('os.O_RDWR', 'os.ftruncate(fa, 5000)\nprint(st("b").split()[0])\nos.posix_fallocate(fa, 0, 7000)\nprint(st("b").split()[0])')
    assert.equal(out, '5000\n7000\n')
  })
})
