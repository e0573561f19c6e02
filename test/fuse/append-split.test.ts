// One O_APPEND write(2) through the mount reaches the Volume as one write (torn36). Through the
// page cache the kernel sent a write crossing a page boundary of a page it had not cached as one
// WRITE per page, so `echo C246 >>` onto a file the kernel took for 4,094 bytes long came as
// "C2" then "46\n": two appends at the Volume's end of file, and a commit between them (a close
// of another handle of the file, which commits what the file holds) made them two `append` ops,
// between which another host's append could sort: test/mount/append-hosts.test.ts read "C2A224"
// then "46". An O_APPEND handle is opened with direct I/O (fuse/binding.c), so its write comes whole.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { readFile, writeFile } from 'node:fs/promises'
import { Volume } from '../../node/index.ts'
import { mount } from '../../fuse/index.ts'
import { teardown, tempDir, ok, checkUnmounted } from '../helpers/fuse-mount.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

const enc = new TextEncoder()

/**
 * The pages the kernel gives one request on a mount asking `maxWrite` (fuse/binding.c
 * piece_pages): libfuse asks (maxWrite - 1) / page + 1, the kernel takes at most its
 * fs.fuse.max_pages_limit. A direct write is cut at that many pages of the caller's memory, each
 * iovec taking one of its own.
 */
async function pagesPerRequest (maxWrite = 1024 * 1024): Promise<number> {
  const page = Number(await ok('getconf PAGESIZE'))
  let limit = 256
  try { limit = Number(await readFile('/proc/sys/fs/fuse/max_pages_limit', 'utf8')) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
  return Math.min(Math.floor((maxWrite - 1) / page) + 1, limit)
}

/** The pieces a writev of `iovecs` iovecs of `each` bytes comes in, `pages` iovecs a piece at most. */
function pieces (iovecs: number, each: number, pages: number): number[] {
  const out: number[] = []
  for (let left = iovecs; left > 0; left -= pages) out.push(Math.min(left, pages) * each)
  return out
}

describe('fuse: an O_APPEND write(2) is one write at the Volume', function () {
  this.timeout(60_000)
  const t = teardown()
  after(async () => { await t.run() })

  it('a line appended across a page boundary of a file not in the page cache: one write, one append op, even with a commit of the file between the kernel\'s requests', async () => {
    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
    t.add(async () => { await vol.close() })
    // 4,094 bytes: the line "C246\n" crosses the first page's end by 3 bytes
    await vol.writeFile('/f', enc.encode('x'.repeat(4093) + '\n'))
    const other = await vol.open('/f', 'a')
    const writes: number[] = []
    wrapHandles(vol, path => path === '/f', fh => ({
      write: async (buffer, offset, length, position, options) => {
        const r = await fh.write(buffer, offset, length, position, options)
        writes.push(length)
        // another handle of the file closes here (a second `echo >>` loop on this host): its
        // flush commits whatever the file holds
        await other.flush()
        return r
      }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(vol, dir)
    t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
    const before = (await vol.log('/f')).length
    await ok(`echo C246 >> ${join(dir, 'f')}`)
    await other.close()
    const versions = (await vol.log('/f')).slice(before)
    assert.deepEqual(versions.map(v => v.size), [4099], 'one version (one append op) for the line')
    assert.deepEqual(writes, [5], 'the Volume got the line in one write')
    assert.equal(new TextDecoder().decode(await vol.readFile('/f')).slice(4090), 'xxx\nC246\n')
  })

  // `make -j >> log`, `(a & b) >> f`: processes share one open file description (one FUSE handle);
  // one closing its copy sends a FLUSH on that handle between the pieces of another's write(2)
  // (the kernel cuts a direct write at 1 MiB). The FLUSH names the closing process's lock owner,
  // a piece its writer's: another owner's flush keeps the run back (review37a)
  for (const directWrites of [undefined, 0]) {
    it(`a forked child's close of the shared fd between the pieces of the parent's write(2) commits none of it${directWrites === 0 ? ' (writes through libfuse)' : ''}`, async () => {
      const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
      t.add(async () => { await vol.close() })
      await vol.writeFile('/k', enc.encode('base\n'))
      const side = await tempDir(t, 'darkfs-side-')
      const marker = join(side, 'go')
      let flushed = false
      let seen!: () => void
      const flushSeen = new Promise<void>(resolve => { seen = resolve })
      let pieces = 0
      // the pieces answered when the first FLUSH (the child's) came: between two of them, or the
      // test shows nothing (a kernel whose flush waited for the write(2) would pass it anyway)
      let piecesAtFlush: number | undefined
      wrapHandles(vol, path => path === '/k', fh => ({
        write: async (buffer, offset, length, position, options) => {
          // (the open file's clock stopped: the piece is kept back however slow the machine: APPEND_KEEP_IDLE_MS)
          ;(vol as any).open_.get(vol.tree.lookup('root', 'k')?.inode).now = () => 0
          const r = await fh.write(buffer, offset, length, position, options)
          if (++pieces === 1) {
            // the child closes its copy now; the next piece is sent once this one is answered
            await writeFile(marker, 'go')
            let timer: NodeJS.Timeout | undefined
            await Promise.race([flushSeen, new Promise(resolve => { timer = setTimeout(resolve, 10_000) })])
            clearTimeout(timer)
          }
          return r
        },
        flush: async (options) => {
          piecesAtFlush ??= pieces
          await fh.flush(options)
          flushed = true
          seen()
        }
      }))
      const dir = await tempDir(t, 'darkfs-mnt-')
      const m = await mount(vol, dir, { directWrites })
      t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
      const before = (await vol.log('/k')).length
      const n = 3 * 1024 * 1024 + 7
      await ok(`python3 -c 'import os, time
fd = os.open("${join(dir, 'k')}", os.O_WRONLY | os.O_APPEND)
pid = os.fork()
if pid == 0:
    while not os.path.exists("${marker}"): time.sleep(0.01)
    os.close(fd)
    os._exit(0)
assert os.write(fd, b"z" * ${n}) == ${n}
os.waitpid(pid, 0)
os.close(fd)'`)
      assert.ok(flushed, 'the child\'s close came as a FLUSH')
      assert.ok(pieces > 1, 'the write(2) came in pieces')
      assert.ok(piecesAtFlush !== undefined && piecesAtFlush >= 1 && piecesAtFlush < pieces, `the child's FLUSH came between the pieces (after ${String(piecesAtFlush)} of ${pieces})`)
      const versions = (await vol.log('/k')).slice(before).map(v => v.size)
      assert.deepEqual(versions, [5 + n], 'one version: the write(2) whole')
      assert.equal((await vol.stat('/k')).size, 5 + n)
    })
  }

  /**
   * A volume holding /NAME ('base\n'), mounted at `dir` with `opts`, and another handle of the file
   * (`other`, opened for append): each WRITE to the file is noted (`writes`, its length), then
   * `other` flushes (a reader opening and closing it: its flush commits what is whole) and the
   * size it committed is noted (`seen`). The open file's clock is stopped: its runs are as fresh
   * as can be, APPEND_KEEP_IDLE_MS never passes.
   */
  async function flushedAfterEachWrite (name: string, opts: { directWrites?: number, maxWrite?: number }): Promise<{ vol: Volume, other: Awaited<ReturnType<Volume['open']>>, dir: string, writes: number[], seen: number[] }> {
    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
    t.add(async () => { await vol.close() })
    await vol.writeFile(`/${name}`, enc.encode('base\n'))
    const other = await vol.open(`/${name}`, 'a')
    const committed = (): number => vol.tree.byIno(Number(other.ino))!.size
    const writes: number[] = []
    const seen: number[] = []
    wrapHandles(vol, path => path === `/${name}`, fh => ({
      write: async (buffer, offset, length, position, options) => {
        ;(vol as any).open_.get(vol.tree.lookup('root', name)?.inode).now = () => 0
        const r = await fh.write(buffer, offset, length, position, options)
        writes.push(length)
        await other.flush()
        seen.push(committed())
        return r
      }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(vol, dir, opts)
    t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
    return { vol, other, dir, writes, seen }
  }

  // A log writer keeping its fd open (mend37a2): a WRITE shorter than a piece the kernel cuts with
  // more to come (fuse/binding.c piece_pages) ends its write(2), so another handle's flush commits
  // it at once, however lately its writer wrote; a writev of many small iovecs, cut at the page limit
  // of the caller's memory into pieces of a few bytes a page, is still one append
  for (const directWrites of [undefined, 0]) {
    it(`a writer of short lines keeping its fd open has each committed by another handle's flush; a writev cut in pieces is one append${directWrites === 0 ? ' (writes through libfuse)' : ''}`, async () => {
      const { vol, other, dir, writes, seen } = await flushedAfterEachWrite('l', { directWrites })
      const before = (await vol.log('/l')).length
      await ok(`python3 -c 'import os
fd = os.open("${join(dir, 'l')}", os.O_WRONLY | os.O_APPEND)
for line in (b"l1\\n", b"line 2\\n", b"l3\\n"):
    assert os.write(fd, line) == len(line)
assert os.writev(fd, [b"abc\\n"] * 300) == 1200
os.close(fd)'`)
      await other.close()
      // 1,024 + 176 with 4 KiB pages (256 a request)
      const cut = pieces(300, 4, await pagesPerRequest())
      assert.deepEqual(writes, [3, 7, 3, ...cut], 'the lines whole, the writev in pieces')
      assert.deepEqual(seen, [8, 15, 18, ...cut.map((_, i) => i < cut.length - 1 ? 18 : 1218)], 'each line committed by the flush after it; the writev\'s pieces but its last kept back')
      assert.deepEqual((await vol.log('/l')).slice(before).map(v => v.size), [8, 15, 18, 1218], 'one append op a write(2)')
      assert.equal(new TextDecoder().decode(await vol.readFile('/l')), 'base\nl1\nline 2\nl3\n' + 'abc\n'.repeat(300))
    })
  }

  // The shortest piece with more to come holds a byte a page of the request's page limit: a
  // writev of one-byte iovecs, one more than the limit, comes as [limit, 1], and the first piece
  // is kept back from another handle's flush. The limit is the mount's (fuse/binding.c
  // piece_pages): with max_write 128 KiB the kernel gives 32 pages, and the threshold fixed at
  // 256 (review37g) let a flush commit the 32-byte piece alone
  for (const maxWrite of [undefined, 128 * 1024]) {
    for (const directWrites of [undefined, 0]) {
      it(`a writev cut at exactly the page limit (one byte a page) is kept back until its last piece${maxWrite !== undefined ? ` (max_write ${maxWrite})` : ''}${directWrites === 0 ? ' (writes through libfuse)' : ''}`, async () => {
        const { vol, other, dir, writes, seen } = await flushedAfterEachWrite('p', { directWrites, maxWrite })
        const pages = await pagesPerRequest(maxWrite)
        await ok(`python3 -c 'import os
fd = os.open("${join(dir, 'p')}", os.O_WRONLY | os.O_APPEND)
assert os.writev(fd, [b"y"] * ${pages + 1}) == ${pages + 1}
os.close(fd)'`)
        await other.close()
        assert.deepEqual(writes, [pages, 1])
        assert.deepEqual(seen, [5, 5 + pages + 1], `the ${pages}-byte piece kept back`)
        assert.equal(new TextDecoder().decode(await vol.readFile('/p')), 'base\n' + 'y'.repeat(pages + 1))
      })
    }
  }

  it('an O_RDONLY|O_APPEND handle is not direct I/O: it maps shared', async () => {
    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/r', enc.encode('mapped\n'))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(vol, dir)
    t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
    // a direct_io handle refuses a shared mapping (ENODEV)
    const out = await ok(`python3 -c 'import os, mmap, sys
fd = os.open("${join(dir, 'r')}", os.O_RDONLY | os.O_APPEND)
m = mmap.mmap(fd, 7, mmap.MAP_SHARED, mmap.PROT_READ)
sys.stdout.write(m[:].decode())'`)
    assert.equal(out, 'mapped\n')
  })

  // O_APPEND is the file's flag at each write (fcntl F_SETFL sets and clears it after open): the
  // kernel sends it with every WRITE, and the Volume appends or writes in place by it
  // (directWrites 0: the binding leaves every write to libfuse, op_write)
  for (const directWrites of [undefined, 0]) describe(`O_APPEND set or cleared with fcntl(F_SETFL) after open${directWrites === 0 ? ', writes through libfuse' : ''}`, function () {
    const dec = new TextDecoder()
    let vol: Volume
    let dir: string
    before(async () => {
      vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
      t.add(async () => { await vol.close() })
      // before the mount's first write of /g: another handle appends "def\n", so the size the
      // kernel put on the write (4) is stale, as after another host's append
      // (the other handle is wrapped too: it only writes)
      let other = false
      wrapHandles(vol, path => path === '/g', fh => ({
        write: async (buffer, offset, length, position, options) => {
          if (!other) {
            other = true
            const h = await vol.open('/g', 'a')
            try { await h.write(enc.encode('def\n'), 0, 4, 0) } finally { await h.close() }
            other = false
          }
          return await fh.write(buffer, offset, length, position, options)
        }
      }))
      dir = await tempDir(t, 'darkfs-mnt-')
      const m = await mount(vol, dir, { directWrites })
      t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
    })
    const perl = (open: string, then: string): string =>
      `perl -e 'use Fcntl; sysopen(F, "${join(dir, 'g')}", ${open}) or die $!; ${then}; close(F) or die $!'`

    it('set on a handle opened without it: the write appends at the Volume\'s end of file', async () => {
      await vol.writeFile('/g', enc.encode('abc\n'))
      await ok(perl('O_WRONLY', 'fcntl(F, F_SETFL, O_APPEND) or die $!; syswrite(F, "X\\n") == 2 or die $!'))
      assert.equal(dec.decode(await vol.readFile('/g')), 'abc\ndef\nX\n')
    })

    it('cleared on a handle opened with it: the write lands where it is told', async () => {
      await vol.writeFile('/g', enc.encode('abc\n'))
      await ok(perl('O_WRONLY|O_APPEND', 'fcntl(F, F_SETFL, 0) or die $!; sysseek(F, 0, 0) // die $!; syswrite(F, "J") == 1 or die $!'))
      assert.equal(dec.decode(await vol.readFile('/g')), 'Jbc\ndef\n')
    })
  })
})
