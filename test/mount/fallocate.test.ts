// fallocate(2) on a real mount (util-linux's fallocate(1) makes the calls): allocating grows
// the file with zeros or keeps its size, a punched hole and a zeroed range read as zeros with
// every byte around them as it was, a range reaching past the end grows the file only without
// KEEP_SIZE, and what the Volume cannot do (collapse or insert a range) or has no room for fails
// with the errno the caller can act on, leaving the file as it was.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mountEach, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Mounted } from '../helpers/fuse-mount.ts'

const MiB = 1024 * 1024

describe('mount: fallocate', function () {
  this.timeout(180_000)
  const here = mountEach()
  let m: Mounted
  let ref: string
  beforeEach(async () => {
    m = here().m
    ref = join(await tempDir(here().t), 'ref')
  })

  /** 3 MiB of random bytes at `name` in the mount, a copy at `ref` beside it (off the mount). */
  async function randomFile (name: string): Promise<void> {
    await ok(`head -c ${3 * MiB} /dev/urandom > '${ref}' && cp '${ref}' ${name}`, { cwd: m.dir })
  }

  /** Zeros `length` bytes of the reference copy at `offset` (what the mount should now hold). */
  async function zeroRef (offset: number, length: number): Promise<void> {
    await ok(`dd if=/dev/zero of='${ref}' bs=64K iflag=count_bytes oflag=seek_bytes seek=${offset} count=${length} conv=notrunc status=none`)
  }

  const size = async (name: string): Promise<number> => Number((await ok(`stat -c %s ${name}`, { cwd: m.dir })).trim())

  it('mode 0 makes a new file of zeros of the length asked; KEEP_SIZE leaves the size', async function () {
    await ok('fallocate -l 3M f', { cwd: m.dir })
    assert.equal(await size('f'), 3 * MiB)
    await ok(`cmp -n ${3 * MiB} f /dev/zero`, { cwd: m.dir })
    await ok('fallocate -n -o 8M -l 1M f', { cwd: m.dir })
    assert.equal(await size('f'), 3 * MiB)
    // growing an existing file keeps its bytes and adds zeros
    await randomFile('g')
    await ok('fallocate -o 2M -l 3M g', { cwd: m.dir })
    assert.equal(await size('g'), 5 * MiB)
    await ok(`cmp -n ${3 * MiB} g '${ref}' && cmp -i ${3 * MiB}:0 -n ${2 * MiB} g /dev/zero`, { cwd: m.dir })
  })

  it('a punched hole across a chunk boundary reads as zeros, every byte around it as it was, the size kept', async function () {
    await randomFile('d')
    await ok(`fallocate -p -o 1000 -l ${MiB + 100_000} d`, { cwd: m.dir })
    await zeroRef(1000, MiB + 100_000)
    assert.equal(await size('d'), 3 * MiB)
    await ok(`cmp d '${ref}'`, { cwd: m.dir })
    // a hole reaching past the end of file: zeros to the end, the size kept
    await ok(`fallocate -p -o ${2 * MiB + 5} -l ${4 * MiB} d`, { cwd: m.dir })
    await zeroRef(2 * MiB + 5, MiB - 5)
    assert.equal(await size('d'), 3 * MiB)
    await ok(`cmp d '${ref}'`, { cwd: m.dir })
    // and as read by a fresh open after the file was synced and closed
    await ok('sync d', { cwd: m.dir })
    await ok(`cmp d '${ref}'`, { cwd: m.dir })
  })

  it('a zeroed range reads as zeros; one past the end grows the file unless KEEP_SIZE', async function () {
    await randomFile('z')
    await ok('fallocate -z -o 2097000 -l 500 z', { cwd: m.dir })
    await zeroRef(2097000, 500)
    await ok(`cmp z '${ref}'`, { cwd: m.dir })
    await ok(`fallocate -z -n -o ${3 * MiB - 10} -l 100 z`, { cwd: m.dir })
    await zeroRef(3 * MiB - 10, 10)
    assert.equal(await size('z'), 3 * MiB)
    await ok(`fallocate -z -o ${3 * MiB - 10} -l 100 z`, { cwd: m.dir })
    assert.equal(await size('z'), 3 * MiB + 90)
    await ok(`truncate -s ${3 * MiB + 90} '${ref}' && cmp z '${ref}'`, { cwd: m.dir })
  })

  it('an O_APPEND descriptor zeroes where it is told, not at the end', async function () {
    await ok('printf "hello world" > a', { cwd: m.dir })
    // fallocate(1) opens the file O_RDWR: python3 (scripts/setup installs it) calls
    // fallocate(2) on fd 3, which bash's >> opens O_APPEND
    const r = await sh(`python3 -c 'import os,ctypes; l=ctypes.CDLL(None,use_errno=True); assert l.fallocate(3,3,ctypes.c_long(2),ctypes.c_long(3))==0, os.strerror(ctypes.get_errno())' 3>>a`, { cwd: m.dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await ok('od -An -c a | tr -s " "', { cwd: m.dir }), ' h e \\0 \\0 \\0 w o r l d\n')
  })

  it('collapse and insert fail with ENOTSUP, a range with no room with ENOSPC, a read-only descriptor with EBADF: the file unchanged', async function () {
    await randomFile('e')
    for (const [args, message] of [
      [`-c -o 0 -l ${MiB}`, 'Operation not supported'],
      [`-i -o 0 -l ${MiB}`, 'Operation not supported'],
      ['-n -o 0 -l 8T', 'No space left on device'],
      ['-l 8T', 'No space left on device']
    ] as const) {
      const r = await sh(`fallocate ${args} e`, { cwd: m.dir })
      assert.notEqual(r.code, 0, `fallocate ${args} succeeded`)
      assert.match(r.stderr, new RegExp(message), `fallocate ${args}: ${r.stderr}`)
    }
    const r = await sh('python3 -c \'import os,ctypes; l=ctypes.CDLL(None,use_errno=True); assert l.fallocate(3,0,ctypes.c_long(0),ctypes.c_long(10))==-1 and ctypes.get_errno()==9\' 3<e', { cwd: m.dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await size('e'), 3 * MiB)
    await ok(`cmp e '${ref}'`, { cwd: m.dir })
  })
})
