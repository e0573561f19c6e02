// Sizes from the kernel never size an allocation: `truncate -s 999999999999999` (about 888 TiB,
// past darkfs's 16 TiB FILE_SIZE_MAX) is EFBIG and the host lives on; a sparse file of a legal
// size (1 TiB, or bytes written 4 TiB in) costs memory for its data, not its length, through
// the write, the commit and the reads; a write that starts past the maximum is EFBIG too.
// Real processes: `darkfs up --mount`, and coreutils in the mount.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chmod, readFile } from 'node:fs/promises'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'
import { FILE_SIZE_MAX } from '../../node/index.ts'

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
const MiB = 2 ** 20
const TiB = 2 ** 40

/** The pid of the process serving the data dir (the worker under `up`'s supervisor). */
async function hostPid (data: string): Promise<number> {
  return Number((await readFile(join(data, 'host.pid'), 'utf8')).trim())
}

/** Resident memory of a process, bytes. */
async function rss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  assert.ok(kb !== null, status)
  return Number(kb[1]) * 1024
}

describe('mount bounds: sizes from the kernel (real process)', function () {
  const t = new Teardown()
  let data: string
  let mnt: string
  let pid: number

  before(async () => {
    const root = await tempDir(t, 'darkfs-bounds-')
    await chmod(root, 0o755)
    data = join(root, 'data')
    mnt = join(root, 'mnt')
    t.add(async () => { await sh(`umount -l ${q(mnt)} 2>/dev/null`) })
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    t.add(async () => { await host.stop('SIGTERM') })
    pid = await hostPid(data)
  })
  after(async () => { await t.run() })

  it('truncate -s 999999999999999 FILE: EFBIG ("File too large"); the host lives and the mount works', async () => {
    const f = join(mnt, 'huge')
    await ok(`echo before > ${q(f)}`)
    const r = await sh(`truncate -s 999999999999999 ${q(f)}`)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /File too large/)
    // also past the maximum by one byte, and through an open descriptor (ftruncate)
    const one = await sh(`truncate -s ${FILE_SIZE_MAX + 1} ${q(f)}`)
    assert.match(one.stderr, /File too large/)
    const fd = await sh(`python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.ftruncate(fd, ${FILE_SIZE_MAX + 1})' ${q(f)}`)
    assert.match(fd.stderr, /File too large/)
    assert.equal(await hostPid(data), pid, 'the same host serves the mount')
    assert.equal(await ok(`cat ${q(f)}`), 'before\n')
    await ok(`echo after > ${q(join(mnt, 'g'))}`)
    assert.equal(await ok(`cat ${q(join(mnt, 'g'))} && stat -c %s ${q(f)}`), 'after\n7\n')
  })

  it('truncate -s 1T: a sparse file of a legal size; the host\'s memory does not follow its length', async () => {
    const f = join(mnt, 'sparse')
    const before = await rss(pid)
    await ok(`truncate -s 1T ${q(f)}`)
    assert.equal((await ok(`stat -c %s ${q(f)}`)).trim(), String(TiB))
    // the last and a middle 4 KiB read as zeros
    assert.equal(await ok(`dd if=${q(f)} bs=4096 skip=${TiB / 4096 - 1} count=1 status=none | tr -d '\\0' | wc -c`), '0\n')
    assert.equal(await ok(`dd if=${q(f)} bs=4096 skip=${TiB / 8192} count=1 status=none | wc -c`), '4096\n')
    // written into, in the middle, and grown by one more truncate
    await ok(`printf middle | dd of=${q(f)} bs=1 seek=${TiB / 2} conv=notrunc status=none`)
    await ok(`truncate -s 2T ${q(f)}`)
    assert.equal(await ok(`dd if=${q(f)} bs=1 skip=${TiB / 2} count=6 status=none`), 'middle')
    assert.equal(JSON.parse((await darkfs(['--data', data, 'stat', '--json', '/sparse'])).stdout).size, 2 * TiB)
    const grew = (await rss(pid)) - before
    // a dense manifest of 2 TiB is 2 M chunk refs (hundreds of MiB in memory); sparse, a few refs
    assert.ok(grew < 64 * MiB, `the host grew by ${Math.round(grew / MiB)} MiB for an empty 2 TiB file`)
    assert.equal(await hostPid(data), pid)
  })

  it('dd seek far: bytes written 4 TiB in read back; past the maximum the write is EFBIG', async () => {
    const f = join(mnt, 'far')
    const seek = 4 * TiB / 4096
    await ok(`head -c 8192 /dev/urandom > /tmp/darkfs-bounds-src && dd if=/tmp/darkfs-bounds-src of=${q(f)} bs=4096 seek=${seek} status=none conv=fsync`)
    assert.equal((await ok(`stat -c %s ${q(f)}`)).trim(), String(4 * TiB + 8192))
    assert.equal(await ok(`dd if=${q(f)} bs=4096 skip=${seek} count=2 status=none | cmp - /tmp/darkfs-bounds-src && echo same`), 'same\n')
    // read back through the committed version too (a fresh open after the close)
    assert.equal(await ok(`sleep 1; dd if=${q(f)} bs=4096 skip=${seek} count=2 status=none | cmp - /tmp/darkfs-bounds-src && echo same`), 'same\n')
    const past = await sh(`dd if=/dev/zero of=${q(join(mnt, 'past'))} bs=4096 count=1 seek=${FILE_SIZE_MAX / 4096} status=none`)
    assert.notEqual(past.code, 0)
    assert.match(past.stderr, /File too large/)
    assert.equal(await hostPid(data), pid)
    await ok(`rm -f /tmp/darkfs-bounds-src ${q(f)} ${q(join(mnt, 'past'))}`)
  })
})
