// One O_APPEND write(2) through the mount reaches the Volume as one write (torn36). Through the
// page cache the kernel sent a write crossing a page boundary of a page it had not cached as one
// WRITE per page, so `echo C246 >>` onto a file the kernel took for 4,094 bytes long came as
// "C2" then "46\n": two appends at the Volume's end of file, and a commit between them (a close
// of another handle of the file, which commits what the file holds) made them two `append` ops,
// between which another host's append could sort: test/mount/append-hosts.test.ts read "C2A224"
// then "46". An O_APPEND handle is opened with direct I/O (fuse/binding.c), so its write comes whole.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Volume } from '../../node/index.ts'
import { mount } from '../../fuse/index.ts'
import { teardown, tempDir, ok, checkUnmounted } from '../helpers/fuse-mount.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

const enc = new TextEncoder()

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
