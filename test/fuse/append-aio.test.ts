// An O_APPEND write(2) submitted asynchronously (Linux AIO io_submit; io_uring alike) is cut into
// pieces the kernel has in flight at once (fuse_direct_IO with async DIO): the binding's worker
// threads hand them to JS in any order, and each is laid at the Volume's end of file. Before
// fuse/append-order.ts a write of 1 MiB + 100 bytes from a malloc'd buffer (pieces 1,045,184 +
// 3,492) had its tail stored before its head in about a third of the writes (review37g).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Volume } from '../../node/index.ts'
import { mount } from '../../fuse/index.ts'
import { teardown, tempDir, ok, checkUnmounted } from '../helpers/fuse-mount.ts'

const enc = new TextEncoder()
const L = 1048576 + 100
const WRITES = 24

describe('fuse: an O_APPEND write(2) submitted by AIO lands in order', function () {
  this.timeout(120_000)
  const t = teardown()
  after(async () => { await t.run() })

  it(`${WRITES} io_submit pwrites of 1 MiB + 100 bytes on an O_APPEND handle: each lands whole, head before tail`, async () => {
    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-') })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/l', enc.encode('base\n'))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(vol, dir)
    t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
    // io_setup 206, io_submit 209, io_getevents 208 (x86_64); an iocb of IOCB_CMD_PWRITE (1)
    await ok(`python3 -c 'import os, ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("${join(dir, 'l')}", os.O_WRONLY | os.O_APPEND)
ctx = ctypes.c_ulong(0)
assert libc.syscall(206, 128, ctypes.byref(ctx)) == 0, ctypes.get_errno()
L = ${L}
data = b"".join(b"%07d\\n" % i for i in range(L // 8)) + b"T" * (L % 8)
buf = ctypes.create_string_buffer(data, L)
cb = struct.pack("=QIIHhIQQqQII", 1, 0, 0, 1, 0, fd, ctypes.addressof(buf), L, 0, 0, 0, 0)
cbuf = ctypes.create_string_buffer(cb, len(cb))
ptrs = (ctypes.c_void_p * 1)(ctypes.addressof(cbuf))
for k in range(${WRITES}):
    r = libc.syscall(209, ctx, 1, ptrs)
    assert r == 1, (r, ctypes.get_errno())
    ev = (ctypes.c_int64 * 4)()
    n = libc.syscall(208, ctx, 1, 1, ev, None)
    assert n == 1 and ev[2] == L, (n, ev[2], ev[3])
os.close(fd)'`)
    const text = new TextDecoder().decode(await vol.readFile('/l'))
    const one = Array.from({ length: Math.floor(L / 8) }, (_, i) => String(i).padStart(7, '0') + '\n').join('') + 'T'.repeat(L % 8)
    assert.equal(text.length, 5 + WRITES * L)
    const bad: number[] = []
    for (let k = 0; k < WRITES; k++) if (text.slice(5 + k * L, 5 + (k + 1) * L) !== one) bad.push(k)
    assert.deepEqual(bad, [], 'writes whose pieces landed out of order')
    assert.equal(text.slice(0, 5), 'base\n')
  })
})
