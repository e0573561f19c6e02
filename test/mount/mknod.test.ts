// mknod in the mount as on ext4: block and character devices, fifos (and sockets and regular
// files, which mknod makes too), with every permission
// bit (setuid, setgid, sticky included), under umask 0 and 022, as root and as an unprivileged
// user (who may make fifos but not devices), then chowned and chmodded; stat shows the same
// type, rdev (major/minor up to the kernel's 12/20 bits), mode and owner as the same calls on
// a local temp dir, and times set at creation (atime = mtime = ctime, then ctime moves on
// chmod/chown and mtime does not). Real processes: `darkfs up --mount`, python3's os.mknod.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chmod, mkdir } from 'node:fs/promises'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { sh, ok, testUser } from '../helpers/fuse-mount.ts'
import { MKNOD_SCRIPT } from '../helpers/mount-scripts.ts'

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

describe('mknod in the mount, as on a local disk (real process)', function () {
  const t = new Teardown()
  let mnt: string
  let local: string
  let user: { uid: number, gid: number }

  before(async () => {
    const root = await tempDir(t, 'darkfs-mknod-')
    await chmod(root, 0o755)
    const data = join(root, 'data')
    mnt = join(root, 'mnt')
    local = join(root, 'local')
    await mkdir(local)
    t.add(async () => { await sh(`umount -l ${q(mnt)} 2>/dev/null`) })
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    t.add(async () => { await host.stop('SIGTERM') })
    user = await testUser()
    await ok(`cat > /tmp/darkfs-mknod.py <<'EOF'\n${MKNOD_SCRIPT}\nEOF`)
  })
  after(async () => { await t.run(); await sh('rm -f /tmp/darkfs-mknod.py') })

  async function both (sub: string, opts: { user?: { uid: number, gid: number }, mode?: number } = {}): Promise<[string, string]> {
    const out: string[] = []
    for (const base of [local, mnt]) {
      const d = join(base, sub)
      await ok(`mkdir ${q(d)} && chmod ${(opts.mode ?? 0o755).toString(8)} ${q(d)}`)
      const args = [q(d), String(user.uid), String(user.gid), ...(opts.user !== undefined ? ['user'] : [])].join(' ')
      out.push(await ok(`python3 /tmp/darkfs-mknod.py ${args}`, { user: opts.user }))
    }
    return [out[0], out[1]]
  }

  it('mknod b/c/p/s/regular as root, every mode bit, umask 0 and 022, then chown and chmod: as on the local disk', async () => {
    const [disk, mount] = await both('root')
    assert.ok(disk.includes('fresh=True'), disk)
    assert.doesNotMatch(disk, /fresh=False/)
    assert.deepEqual(mount.split('\n'), disk.split('\n'))
    // and the listing shows the types
    assert.equal((await ok(`stat -c '%F %t:%T' ${q(join(mnt, 'root', 'b-0-4755'))} ${q(join(mnt, 'root', 'c-22-2755'))} ${q(join(mnt, 'root', 'p-0-1777'))}`)),
      (await ok(`stat -c '%F %t:%T' ${q(join(local, 'root', 'b-0-4755'))} ${q(join(local, 'root', 'c-22-2755'))} ${q(join(local, 'root', 'p-0-1777'))}`)))
  })

  it('mknod as an unprivileged user in a 1777 dir: fifos are its own, devices are EPERM, as on the local disk', async () => {
    const [disk, mount] = await both('user', { user, mode: 0o1777 })
    assert.match(disk, /^p-0-644 p 0o644 \d+ \d+ 0 0 fresh=True$/m)
    assert.match(disk, /^b-0-644 1$/m) // EPERM
    assert.deepEqual(mount.split('\n'), disk.split('\n'))
    assert.equal((await ok(`stat -c '%u:%g' ${q(join(mnt, 'user', 'p-22-777'))}`)).trim(), `${user.uid}:${user.gid}`)
  })

  it('mknod in a setgid dir: the node takes the dir\'s group, as on the local disk', async () => {
    const out: string[] = []
    for (const base of [local, mnt]) {
      const d = join(base, 'sgid')
      await ok(`mkdir ${q(d)} && chown 0:${user.gid} ${q(d)} && chmod 2777 ${q(d)}`)
      await ok(`mkfifo -m 775 ${q(join(d, 'fifo'))} && mknod -m 640 ${q(join(d, 'dev'))} c 1 7`)
      await ok(`mkfifo -m 770 ${q(join(d, 'ufifo'))}`, { user })
      out.push(await ok(`cd ${q(d)} && stat -c '%n %F %a %u %g %t:%T' fifo dev ufifo`))
    }
    assert.equal(out[1], out[0])
  })
})
