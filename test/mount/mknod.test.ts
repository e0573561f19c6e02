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

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/**
 * The same calls in DIR, one line per node: name, type, mode, uid, gid, major, minor, and
 * whether atime = mtime = ctime within the call's time; errors as "name ERRNO".
 */
const SCRIPT = String.raw`
import os, stat, sys, time
d = sys.argv[1]
uid, gid = int(sys.argv[2]), int(sys.argv[3])
as_user = len(sys.argv) > 4
out = []
kinds = {'b': stat.S_IFBLK, 'c': stat.S_IFCHR, 'p': stat.S_IFIFO, 's': stat.S_IFSOCK, 'f': stat.S_IFREG}
devs = [(1, 3), (8, 17), (4095, 1048575), (0, 0), (259, 256)]
modes = [0, 0o644, 0o600, 0o777, 0o4755, 0o2755, 0o1777, 0o7777, 0o6000, 0o2070]
def show(name, t0, t1):
    st = os.lstat(os.path.join(d, name))
    kind = {stat.S_IFBLK: 'b', stat.S_IFCHR: 'c', stat.S_IFIFO: 'p', stat.S_IFSOCK: 's', stat.S_IFREG: 'f'}.get(stat.S_IFMT(st.st_mode), '?')
    fresh = st.st_atime_ns == st.st_mtime_ns == st.st_ctime_ns and t0 <= st.st_mtime_ns <= t1
    return f"{name} {kind} {oct(stat.S_IMODE(st.st_mode))} {st.st_uid} {st.st_gid} {os.major(st.st_rdev)} {os.minor(st.st_rdev)} fresh={fresh}"
for umask in (0, 0o22):
    os.umask(umask)
    for k, ifmt in kinds.items():
        for i, mode in enumerate(modes):
            major, minor = devs[i % len(devs)] if k in 'bc' else (0, 0)
            name = f"{k}-{umask:o}-{mode:o}"
            t0 = time.time_ns() - 10_000_000
            try:
                os.mknod(os.path.join(d, name), mode | ifmt, os.makedev(major, minor))
            except OSError as e:
                out.append(f"{name} {e.errno}")
                continue
            out.append(show(name, t0, time.time_ns() + 10_000_000))
if not as_user:
    # owners: another user and group, as chown(1) gives them; then the mode again (chown may
    # clear setuid/setgid), and times: ctime moves, mtime stays
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        before = os.lstat(p)
        time.sleep(0.002)
        os.chown(p, uid, gid)
        owned = os.lstat(p)
        os.chmod(p, 0o6755)
        after = os.lstat(p)
        out.append(f"{name} chown {oct(stat.S_IMODE(owned.st_mode))} {owned.st_uid} {owned.st_gid} chmod {oct(stat.S_IMODE(after.st_mode))} ctime-moved={owned.st_ctime_ns > before.st_ctime_ns} mtime-kept={after.st_mtime_ns == before.st_mtime_ns}")
print("\n".join(out))
`

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
    await ok(`cat > /tmp/darkfs-mknod.py <<'EOF'\n${SCRIPT}\nEOF`)
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
