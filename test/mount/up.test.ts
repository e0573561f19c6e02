// `darkfs up --mount DIR` as a real process: the mount options hold through the CLI
// (allow_other, default_permissions, use_ino), and a SIGKILLed host leaves a stale mount that
// the next `darkfs up --mount` on the same dir detects and replaces.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chmod, readFile, readdir } from 'node:fs/promises'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh, ok, testUser } from '../helpers/fuse-mount.ts'

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/** Has every thread of process `pid` exited: the process gone, or only its main thread left, a zombie? */
async function threadsExited (pid: number): Promise<boolean> {
  const tids = await readdir(`/proc/${pid}/task`).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return []
    throw err
  })
  for (const tid of tids) {
    // a thread gone between the listing and its read has exited too
    const st = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ESRCH') return undefined
      throw err
    })
    if (st !== undefined && !/^\d+ \(.*\) [ZX] /s.test(st)) return false
  }
  return true
}

describe('darkfs up --mount (real process)', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('darkfs up --mount: allow_other, default_permissions and use_ino hold; a SIGKILLed mount is replaced at the next up', async () => {
    const root = await tempDir(t, 'darkfs-up-')
    await chmod(root, 0o755)
    const data = join(root, 'data')
    const mnt = join(root, 'mnt')
    t.add(async () => { await sh(`umount -l ${q(mnt)} 2>/dev/null`) })
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const first = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    assert.ok(first.lines.includes(`mounted ${mnt}`))

    await ok(`echo kept > ${q(join(mnt, 'f'))} && chmod 644 ${q(join(mnt, 'f'))} && mkdir ${q(join(mnt, 'd'))}`)
    const options = (await ok(`findmnt -n -o OPTIONS --mountpoint ${q(mnt)}`)).trim().split(',')
    assert.ok(options.includes('allow_other'), options.join(','))
    assert.ok(options.includes('default_permissions'), options.join(','))
    // use_ino: the kernel sees the volume's own inode numbers
    const ino = JSON.parse((await darkfs(['--data', data, 'stat', '--json', '/f'])).stdout).ino
    assert.equal(Number((await ok(`stat -c %i ${q(join(mnt, 'f'))}`)).trim()), ino)
    // another user reads (allow_other) but may not write a 0644 root file (default_permissions)
    const user = await testUser()
    assert.equal(await ok(`cat ${q(join(mnt, 'f'))}`, { user }), 'kept\n')
    const denied = await sh(`echo no >> ${q(join(mnt, 'f'))}`, { user })
    assert.notEqual(denied.code, 0)
    assert.match(denied.stderr, /Permission denied/)

    // kill -9 of the host (the worker `up` supervises) and of `up` itself, so nothing restarts it
    const host = Number((await readFile(join(data, 'host.pid'), 'utf8')).trim())
    first.child.kill('SIGKILL')
    await first.stop('SIGKILL')
    await sh(`kill -9 ${host} 2>/dev/null`) // (it may be gone already: it dies with `up`)
    // the host's /dev/fuse is let go (and the kernel ends the connection) when its last thread
    // has exited, not when its main thread has: a request sent before that is ended "Software
    // caused connection abort", not refused as a dead connection's
    await until(`every thread of the killed host ${host} exited`, async () => await threadsExited(host), 20_000)
    // (a readdir, not a stat: the kernel may still answer stat from its attribute cache)
    assert.match((await sh(`ls ${q(mnt)}`)).stderr, /Transport endpoint is not connected/)

    const second = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    t.add(async () => { await second.stop('SIGTERM') })
    assert.ok(second.lines.includes(`mounted ${mnt}`))
    assert.equal(await ok(`cat ${q(join(mnt, 'f'))}`), 'kept\n')
    assert.equal(await ok(`ls ${q(mnt)}`), 'd\nf\n')
    // one live mount at the dir, not a new one stacked on the dead one
    assert.equal((await ok(`findmnt -n -o SOURCE --mountpoint ${q(mnt)}`)).trim(), 'darkfs')
    assert.equal(Number((await ok(`stat -c %i ${q(join(mnt, 'f'))}`)).trim()), ino)

    // SIGTERM unmounts cleanly
    assert.equal(await second.stop('SIGTERM'), 0)
    assert.equal((await sh(`findmnt -n --mountpoint ${q(mnt)}`)).stdout, '')
  })
})
