// Scripts and checks shared by the mount tests (test/mount/*.test.ts), on one host and across
// hosts (network.test.ts): the same calls, the same expectations.
import assert from 'node:assert/strict'

/** A path quoted for bash. */
export const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/** Every line of `text` is one of `expected`, each exactly once. */
export function assertLines (text: string, expected: string[]): void {
  assert.ok(text.endsWith('\n'), 'the file ends with a whole line')
  const lines = text.slice(0, -1).split('\n')
  const seen = new Map<string, number>()
  for (const l of lines) seen.set(l, (seen.get(l) ?? 0) + 1)
  const missing = expected.filter(l => !seen.has(l))
  const torn = [...seen.keys()].filter(l => !expected.includes(l))
  const twice = [...seen].filter(([, n]) => n > 1).map(([l]) => l)
  assert.deepEqual({ lines: lines.length, missing: missing.length, torn: torn.slice(0, 5), twice: twice.slice(0, 5) },
    { lines: expected.length, missing: 0, torn: [], twice: [] })
}

/**
 * Python, because it hands a path to the system call as it is. Builds P, a relative path of
 * PATH_MAX - 1 = 4,095 bytes (15 directories of 255 bytes, then a 255-byte name), and siblings
 * of its last component, then runs every operation of the item on them, printing one line per
 * result (an errno name when it fails).
 */
export const LONGPATH_SCRIPT = String.raw`
import errno, os, stat, sys
def name(c): return c * 255
dirs = '/'.join(name(c) for c in 'abcdefghijklmno')
os.makedirs(dirs)
P = dirs + '/' + name('p')
Q = dirs + '/' + name('q')
R = dirs + '/' + name('r')
assert len(P.encode()) == 4095, len(P.encode())
def run(label, fn):
    try:
        r = fn()
        print(label, 'ok' if r is None else r)
    except OSError as e:
        print(label, errno.errorcode[e.errno])
def kind(p): return stat.filemode(os.lstat(p).st_mode)
def creat():
    fd = os.open(P, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, b'hello long path\n')
    os.close(fd)
def read():
    fd = os.open(P, os.O_RDONLY)
    try: return os.read(fd, 100).decode().strip()
    finally: os.close(fd)
run('create', creat)
run('open', read)
run('chmod', lambda: os.chmod(P, 0o640))
run('mode', lambda: kind(P))
run('chown', lambda: os.chown(P, 65534, 65533))
run('owner', lambda: '%d:%d' % (os.lstat(P).st_uid, os.lstat(P).st_gid))
run('truncate', lambda: os.truncate(P, 5))
run('size', lambda: os.lstat(P).st_size)
run('link', lambda: os.link(P, Q))
run('nlink', lambda: os.lstat(P).st_nlink)
run('rename', lambda: os.rename(Q, R))
run('renamed', lambda: os.path.exists(Q) or os.lstat(R).st_size)
run('unlink', lambda: os.unlink(R))
run('unlink', lambda: os.unlink(P))
run('gone', lambda: os.path.lexists(P))
run('mkdir', lambda: os.mkdir(P, 0o755))
run('isdir', lambda: kind(P))
run('rmdir', lambda: os.rmdir(P))
run('symlink', lambda: os.symlink('some/target', P))
run('readlink', lambda: os.readlink(P))
run('unlink', lambda: os.unlink(P))
run('mkfifo', lambda: os.mkfifo(P, 0o600))
run('fifo', lambda: kind(P))
run('unlink', lambda: os.unlink(P))
run('mknod', lambda: os.mknod(P, stat.S_IFIFO | 0o640))
run('node', lambda: kind(P))
run('unlink', lambda: os.unlink(P))
run('mknod-chr', lambda: os.mknod(P, stat.S_IFCHR | 0o600, os.makedev(1, 3)))
run('chr', lambda: '%s %d,%d' % (kind(P), os.major(os.lstat(P).st_rdev), os.minor(os.lstat(P).st_rdev)))
run('unlink', lambda: os.unlink(P))
run('listing', lambda: os.listdir(dirs))
run('name-too-long', lambda: os.mkdir(dirs + '/' + 'x' * 256))
`

/** Walks 30 directories of 255 bytes down (7,680 bytes of path), and works at the bottom. */
export const DEEP_SCRIPT = String.raw`
import os
n = 'd' * 255
top = os.getcwd()
for i in range(30):
    os.mkdir(n)
    os.chdir(n)
with open('f', 'w') as f: f.write('deep\n')
os.symlink('f', 's')
os.rename('f', 'g')
print(open('s').read() if os.path.exists('s') else 'dangling', open('g').read().strip(), sorted(os.listdir('.')))
`

/**
 * The same calls in DIR, one line per node: name, type, mode, uid, gid, major, minor, and
 * whether atime = mtime = ctime within the call's time; errors as "name ERRNO".
 */
export const MKNOD_SCRIPT = String.raw`
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
