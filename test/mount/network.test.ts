// The mount items of issue 12 on a network: six real `darkfs up` processes on loopback TCP
// (k=4, m=2 once all are in), two of them mounted, A and B. Each operation is made on one mount
// and checked on the other: an `rm -rf` of a 2,000-file tree on one while the other lists it,
// a directory's times, 4,095-byte paths, hard-link counts, device nodes and fifos of several
// owners, a size past the maximum and a sparse 1 TiB file; and four shell loops appending on A.
//
// "Seen on B" is strict: B's tree (its control API, not its kernel) is waited for until it
// agrees with A's about what the operation changed, and then B's mount must show exactly what
// A's shows, at once. B's kernel is made to cache the old attributes and entries just before
// (stat through B's mount on every poll), so an attribute or entry cache not dropped when a
// remote op arrives shows as a wrong answer, not as a delay.
//
// One network for the file (started in before()); every test works in a directory of its own.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, upNetwork } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { ControlClient } from '../../node/cli/index.ts'
import { sh, ok, testUser } from '../helpers/fuse-mount.ts'
import { q, assertLines, LONGPATH_SCRIPT, DEEP_SCRIPT, MKNOD_SCRIPT } from '../helpers/mount-scripts.ts'

const HOSTS = 6
/** Which of the hosts are mounted: A and B. */
const MOUNTED = [1, 4]
/** How long a change may take to reach the other host before the test fails (liveness only). */
const SEEN_WITHIN_MS = 60_000
/**
 * How long B's mount may lag its tree: a peer's change that lands while B's kernel makes the
 * inode of its first lookup of the name is invalidated again once the kernel has it (the
 * binding's retries, at most 64 ms apart), so "right after" is "within a retry". Well under the
 * kernel's attribute time (1 s): an invalidation lost for good keeps the old attributes that long.
 */
const MOUNT_SETTLE_MS = 400
/** Files in the trees removed while the other host lists them. */
const FILES = 2000
const KiB = 1024
const TiB = 2 ** 40

/** 0 is A, 1 is B. */
type Side = 0 | 1
const OTHER = (s: Side): Side => (s === 0 ? 1 : 0)
const NAME = ['A', 'B']

/**
 * Lists DIR (os.listdir: getdents until the end) until it is gone, and reports each listing
 * with a name twice or a name not in NAMES (one per line in the file NAMES); writes the number
 * of listings so far to PROGRESS after each; prints `listings <n> bad <n> names <n>` (names: how
 * many distinct names all listings saw).
 */
const LISTER = String.raw`
import os, sys
d, names_file, progress = sys.argv[1], sys.argv[2], sys.argv[3]
names = set(open(names_file).read().split())
runs = bad = 0
seen = set()
while True:
    try:
        listed = os.listdir(d)
    except FileNotFoundError:
        break
    runs += 1
    seen.update(listed)
    if len(set(listed)) != len(listed) or not set(listed) <= names:
        bad += 1
        print('duplicates', len(listed) - len(set(listed)), 'strangers', sorted(set(listed) - names)[:5], file=sys.stderr)
    with open(progress, 'w') as f: f.write(str(runs))
print('listings', runs, 'bad', bad, 'names', len(seen))
`

/** stat(1) fields compared between the mounts: all but the inode number and the atime. */
const STAT_FORMAT = '%n %F %f %h %u %g %t:%T %s %.9Y %.9Z'

describe('six `darkfs up` hosts, two mounted (A and B): the mount items across hosts', function () {
  this.timeout(600_000)
  const t = new Teardown()
  let root: string
  let dirs: string[] = []
  /** Data dirs of A and B. */
  let data: string[] = []
  /** Mount points of A and B. */
  const mnt: string[] = []
  let ctl: ControlClient[] = []
  /** The pids serving A and B when the network was up. */
  let pids: number[] = []

  const hostPid = async (s: Side): Promise<number> => Number((await readFile(join(data[s], 'host.pid'), 'utf8')).trim())
  const on = (s: Side, path = ''): string => join(mnt[s], path)

  /**
   * What side `s`'s tree holds at `path` (the control API, not the kernel), or 'ENOENT' while it
   * holds no such name (not arrived yet, or removed). Any other error is thrown: an EIO or a bug
   * polled as a state only ran the poll to its timeout and reported "never" (small41).
   */
  async function tree (s: Side, path: string): Promise<string> {
    try {
      const st = await ctl[s].stat('/' + path)
      return JSON.stringify([st.mode, st.nlink, st.uid, st.gid, st.rdev, st.size, String(st.mtimeNs), String(st.ctimeNs)])
    } catch (err: any) {
      if (err?.code === 'ENOENT') return err.code
      throw err
    }
  }

  /** stat(1) of `paths` (relative to `cwd` in the mount) through side `s`'s mount, errors included. */
  async function mstat (s: Side, paths: string[], cwd = ''): Promise<string> {
    const r = await sh(`stat -c '${STAT_FORMAT}' -- ${paths.map(q).join(' ')} 2>&1`, { cwd: on(s, cwd) })
    return r.stdout
  }

  /**
   * `paths` (under `cwd`) as `from`'s mount shows them now, once the other side's tree agrees
   * with `from`'s about them: the other mount shows the same at once. The other kernel is kept
   * caching the old state while it waits.
   */
  async function seen (what: string, paths: string[], opts: { from?: Side, cwd?: string } = {}): Promise<string> {
    const from = opts.from ?? 0
    const to = OTHER(from)
    const cwd = opts.cwd ?? ''
    const want = await mstat(from, paths, cwd)
    await until(`${NAME[to]}'s tree has ${what}`, async () => {
      await mstat(to, paths, cwd)
      // all at once: the poll must take well under the kernel's attribute time (1 s)
      const views = await Promise.all(paths.map(async p => await Promise.all([tree(from, join(cwd, p)), tree(to, join(cwd, p))])))
      return views.every(([a, b]) => a === b)
    }, SEEN_WITHIN_MS)
    let got = ''
    let failed = false
    await until(`${NAME[to]}'s mount, right after its tree has ${what}`, async () => {
      try {
        got = await mstat(to, paths, cwd)
      } catch (err) {
        failed = true
        throw err
      }
      return got === want
    }, MOUNT_SETTLE_MS).catch((err: unknown) => {
      // until()'s own timeout shows the last answer against A's; the poll's own error is thrown as it is
      if (failed) throw err
      assert.equal(got, want, `${NAME[to]}'s mount, within ${MOUNT_SETTLE_MS} ms of its tree having ${what}`)
    })
    return want
  }

  /** A new directory for one test, made on A and seen on B. */
  async function fresh (name: string): Promise<string> {
    await ok(`mkdir ${q(on(0, name))}`)
    await until(`B has ${name}/`, async () => await tree(1, name) !== 'ENOENT' && (await sh(`test -d ${q(on(1, name))}`)).code === 0, SEEN_WITHIN_MS)
    return name
  }

  before(async function () {
    root = await tempDir(t, 'darkfs-network-')
    await chmod(root, 0o755)
    mnt.push(join(root, 'mntA'), join(root, 'mntB'))
    const net = await upNetwork(t, root, HOSTS, [], i => MOUNTED.includes(i) ? ['--mount', mnt[MOUNTED.indexOf(i)]] : [])
    dirs = net.dirs
    data = MOUNTED.map(i => dirs[i])
    ctl = data.map(d => new ControlClient(d))
    for (const [s, i] of MOUNTED.entries()) {
      // registered after up(): runs before up()'s SIGKILL, so the mount is released cleanly
      t.add(async () => { await net.hosts[i].stop('SIGTERM'); await sh(`umount -l ${q(mnt[s])} 2>/dev/null`) })
    }
    for (const d of dirs) {
      await until(`${d} has its ${HOSTS - 1} peers`, async () => JSON.parse((await darkfs(['--data', d, 'peers', '--json'])).stdout || '[]').length === HOSTS - 1, 120_000)
    }
    pids = [await hostPid(0), await hostPid(1)]
    // k=4, m=2: one chunk of random bytes written on A becomes six fragments of a quarter of it,
    // one on each host (with k=1, three hosts would hold a whole copy each); A, the writer, may
    // hold the whole chunk for a while besides its fragment
    const stored = async (): Promise<number[]> => await Promise.all(dirs.map(async d => JSON.parse((await darkfs(['--data', d, 'status', '--json'])).stdout).bytesStored as number))
    const before = await stored()
    await writeFile(join(root, 'chunk'), randomBytes(1024 * KiB))
    await ok(`cp ${q(join(root, 'chunk'))} ${q(on(0, 'chunk'))}`)
    let grew: number[] = []
    await until('every host holds a fragment of the chunk', async () => {
      grew = (await stored()).map((n, i) => n - before[i])
      return grew.every(g => g >= 256 * KiB)
    }, SEEN_WITHIN_MS)
    assert.ok(grew.every((g, i) => i === MOUNTED[0] || g < 512 * KiB), `each host holds one fragment of 256 KiB, not a copy: grew by ${grew.join(', ')}`)
    await ok(`rm ${q(on(0, 'chunk'))}`)
  })
  after(async () => { await t.run() })

  /** The mounts and the processes behind them are the ones started in before(). */
  async function alive (): Promise<void> {
    assert.deepEqual([await hostPid(0), await hostPid(1)], pids, 'the same processes serve both mounts')
    for (const s of [0, 1] as Side[]) assert.equal((await sh(`ls ${q(on(s))} > /dev/null`)).code, 0, `${NAME[s]}'s mount answers`)
  }

  it('(1, one host) 4 shell loops, 500 `echo >> log` each at once on A: all 2,000 lines, each once and whole; B reads them', async () => {
    const d = await fresh('append')
    await ok(`for n in 1 2 3 4; do (for i in $(seq 500); do echo "L-$n-$i" >> log; done) & done; wait`, { cwd: on(0, d) })
    const expected = [1, 2, 3, 4].flatMap(n => Array.from({ length: 500 }, (_, i) => `L-${n}-${i + 1}`))
    const text = await ok('cat log', { cwd: on(0, d) })
    const got = new Set(text.split('\n'))
    assert.deepEqual(expected.filter(l => !got.has(l)), [], 'lines lost on A')
    assertLines(text, expected)
    await until('B reads the whole log', async () => (await sh('cat log', { cwd: on(1, d) })).stdout === text, SEEN_WITHIN_MS)
  })

  for (const [remover, lister] of [[0, 1], [1, 0]] as Array<[Side, Side]>) {
    it(`(2) rm -rf of a ${FILES}-file tree on ${NAME[remover]} while ${NAME[lister]} lists the directory: one pass, no listing with a name twice, gone on both`, async () => {
      const d = await fresh(`rm-${NAME[remover]}`)
      // 1,900 files at the top, 5 directories of 20 below: made on the remover's mount
      const top = Array.from({ length: FILES - 100 }, (_, i) => `file-${i}`)
      const subs = Array.from({ length: 5 }, (_, i) => `sub-${i}`)
      await ok(`mkdir tree && cd tree && for i in $(seq 0 ${top.length - 1}); do echo "$i" > "file-$i"; done &&
        for s in ${subs.join(' ')}; do mkdir $s && for i in $(seq 1 20); do : > "$s/f$i"; done; done`, { cwd: on(remover, d) })
      const names = [...top, ...subs]
      const inTree = join(d, 'tree')
      await until(`${NAME[lister]} lists the ${names.length} entries`, async () => (await ctl[lister].list('/' + inTree)).length === names.length &&
        (await ctl[lister].list('/' + join(inTree, subs[4]))).length === 20, SEEN_WITHIN_MS)
      const work = await tempDir(t, 'darkfs-lister-')
      await writeFile(join(work, 'names'), names.join('\n'))
      await writeFile(join(work, 'lister.py'), LISTER)
      const listing = sh(`python3 ${q(join(work, 'lister.py'))} ${q(on(lister, inTree))} ${q(join(work, 'names'))} ${q(join(work, 'progress'))}`)
      await until(`${NAME[lister]} has listed the tree once`, async () => (await sh(`cat ${q(join(work, 'progress'))} 2>/dev/null`)).stdout !== '', SEEN_WITHIN_MS)
      const r = await sh(`rm -rf tree; echo "rc=$?"; ls -A`, { cwd: on(remover, d) })
      assert.equal(r.stderr, '')
      assert.equal(r.stdout, 'rc=0\n')
      const listed = await listing
      const [, runs, bad, seenNames] = /^listings (\d+) bad (\d+) names (\d+)\n$/.exec(listed.stdout) ?? []
      assert.equal(Number(bad), 0, listed.stdout + listed.stderr)
      assert.ok(Number(runs) >= 1 && Number(seenNames) === names.length, listed.stdout)
      // gone on both: through the mounts and in both trees
      for (const s of [0, 1] as Side[]) {
        assert.equal(await ok('ls -A', { cwd: on(s, d) }), '', `${NAME[s]}'s mount`)
        assert.equal((await sh(`test -e ${q(on(s, inTree))}`)).code, 1)
        await until(`${NAME[s]}'s tree has no ${inTree}`, async () => await tree(s, inTree) === 'ENOENT', SEEN_WITHIN_MS)
        assert.deepEqual(await ctl[s].list('/' + d), [])
      }
    })
  }

  it('(3) create, mkdir, mknod, symlink, link, unlink, rmdir, rename on A change the parents\' mtime and ctime; B shows the new times as the op arrives', async () => {
    const d = await fresh('times')
    await ok('mkdir a b && : > a/keep && mkdir a/e', { cwd: on(0, d) })
    await seen('the start', ['a', 'b', 'a/keep', 'a/e'], { cwd: d })
    // an operation, the directories whose times it changes, the names it touches
    const steps: Array<[string, string[], string, string[]]> = [
      ['create', ['a'], 'touch a/f', ['a/f']],
      ['mkdir', ['a'], 'mkdir a/d', ['a/d']],
      ['mknod', ['a'], 'mknod a/p p', ['a/p']],
      ['mkfifo', ['a'], 'mkfifo a/q', ['a/q']],
      ['symlink', ['a'], 'ln -s f a/s', ['a/s']],
      ['link', ['b'], 'ln a/f b/l', ['a/f', 'b/l']],
      ['unlink', ['b'], 'rm b/l', ['a/f', 'b/l']],
      ['rmdir', ['a'], 'rmdir a/d', ['a/d']],
      ['rename-within', ['a'], 'mv a/f a/g', ['a/f', 'a/g']],
      ['rename-across', ['a', 'b'], 'mv a/g b/g', ['a/g', 'b/g']],
      ['rename-over', ['a', 'b'], 'mv a/keep b/g', ['a/keep', 'b/g']],
      ['rename-dir', ['a', 'b'], 'mv a/e b/e', ['a/e', 'b/e']]
    ]
    const times = async (s: Side, paths: string[]): Promise<string[]> => (await ok(`stat -c '%.9Y %.9Z' ${paths.map(q).join(' ')}`, { cwd: on(s, d) })).trim().split('\n')
    for (const [op, parents, cmd, names] of steps) {
      const before = await times(0, parents)
      await mstat(1, [...parents, ...names], d) // B caches what the op will change
      await ok(cmd, { cwd: on(0, d) })
      const after = await times(0, parents)
      parents.forEach((p, i) => {
        const [m0, c0] = before[i].split(' ')
        const [m1, c1] = after[i].split(' ')
        assert.ok(m1 !== m0 && c1 !== c0, `${op} changes ${p}'s mtime and ctime on A: ${before[i]} -> ${after[i]}`)
      })
      await seen(op, [...parents, ...names], { cwd: d })
    }
  })

  it('(4) every operation on a 4,095-byte relative path on A works as on a local disk; B reads the deep files', async () => {
    const d = await fresh('long')
    const local = join(await tempDir(t, 'darkfs-local-'), 'long')
    await mkdir(local)
    const py = (script: string): string => `set -e\npython3 - <<'PY'\n${script}\nPY\n`
    const disk = await ok(py(LONGPATH_SCRIPT), { cwd: local })
    assert.deepEqual(disk.match(/ E[A-Z]+$/mg), [' ENAMETOOLONG'])
    assert.equal(await ok(py(LONGPATH_SCRIPT), { cwd: on(0, d) }), disk)
    // a file at the 4,095-byte path, with its mode and owner, read on B by the same path
    const P = 'abcdefghijklmno'.split('').map(c => c.repeat(255)).join('/') + '/' + 'p'.repeat(255)
    const deep = await tempDir(t, 'darkfs-deep-')
    await writeFile(join(deep, 'path'), P)
    const text = 'written on A at 4,095 bytes of path\n'
    await ok(`python3 -c 'import os, sys; p = open(sys.argv[1]).read(); open(p, "w").write(sys.argv[2]); os.chmod(p, 0o640); os.chown(p, 4321, 4322)' ${q(join(deep, 'path'))} ${q(text)}`, { cwd: on(0, d) })
    const read = `python3 -c 'import os, sys; p = open(sys.argv[1]).read(); st = os.lstat(p); print(oct(st.st_mode), st.st_uid, st.st_gid, st.st_size); print(open(p).read(), end="")' ${q(join(deep, 'path'))}`
    const onA = await ok(read, { cwd: on(0, d) })
    assert.equal(onA, `0o100640 4321 4322 ${text.length}\n${text}`)
    await until('B reads the file at the 4,095-byte path', async () => (await sh(read, { cwd: on(1, d) })).stdout === onA, SEEN_WITHIN_MS)
    // 30 directories of 255 bytes down (7,680 bytes of path), walked by find on both
    await ok('mkdir deep', { cwd: on(0, d) })
    await ok(py(DEEP_SCRIPT), { cwd: on(0, join(d, 'deep')) })
    const find = `find . -name g -printf '%d %s ' -exec sh -c 'printf %s "$1" | wc -c' sh {} ';' -execdir cat {} ';'`
    const found = await ok(find, { cwd: on(0, join(d, 'deep')) })
    assert.equal(found, '31 5 7683\ndeep\n')
    await until('B finds the file 30 directories down', async () => (await sh(find, { cwd: on(1, join(d, 'deep')) })).stdout === found, SEEN_WITHIN_MS)
    // and rm -rf on A removes it all on B
    await ok(`rm -rf ${q(on(0, d))}/*`)
    await until('B has nothing left of it', async () => (await sh('ls -A', { cwd: on(1, d) })).stdout === '', SEEN_WITHIN_MS)
  })

  it('(5) link, unlink and rename over a name on A: B shows every remaining name\'s new nlink and ctime as the op arrives', async () => {
    const d = await fresh('links')
    const names = ['a', 'b', 'c', 'd', 'x', 'dir/e']
    await ok('mkdir dir', { cwd: on(0, d) })
    // each step on A, then the nlink of a (or its last name) A shows
    const steps: Array<[string, string, number]> = [
      ['echo x > a', 'a', 1],
      ['ln a b', 'a', 2],
      ['ln a c', 'a', 3],
      ['ln a dir/e', 'a', 4],
      ['rm b', 'a', 3],
      ['echo y > x', 'a', 3],
      ['mv x c', 'a', 2],
      ['mv a d', 'd', 2],
      ['rm d', 'dir/e', 1]
    ]
    let ctime = ''
    for (const [cmd, name, nlink] of steps) {
      await mstat(1, names, d) // B caches every name's attributes and entry
      await ok(cmd, { cwd: on(0, d) })
      const [h, z] = (await ok(`stat -c '%h %.9Z' ${name}`, { cwd: on(0, d) })).trim().split(' ')
      assert.equal(Number(h), nlink, `after ${cmd}: ${name} has ${nlink} links on A`)
      if (cmd !== 'echo y > x') assert.notEqual(z, ctime, `after ${cmd}: ${name}'s ctime moved on A`)
      ctime = z
      await seen(cmd, names, { cwd: d })
    }
    assert.equal(await ok('cat dir/e c', { cwd: on(1, d) }), 'x\ny\n')
  })

  it('(6) mknod of block and character devices, fifos and sockets on A, every mode, owners of several uids: as on a local disk, and B shows type, rdev, mode, owner and times', async () => {
    const d = await fresh('mknod')
    const user = await testUser()
    const work = await tempDir(t, 'darkfs-mknod-')
    await chmod(work, 0o755)
    const script = join(work, 'mknod.py')
    await writeFile(script, MKNOD_SCRIPT, { mode: 0o644 })
    const local = join(work, 'local')
    await mkdir(local)
    await chmod(local, 0o755)
    // owners spread over several uids and gids (ids are numeric: no account needed for most)
    const owners = [[0, 0], [user.uid, user.gid], [4321, 4322], [65534, 65534], [1, 2]]
    const spread = `python3 -c '
import os, sys
owners = ${JSON.stringify(owners)}
for i, n in enumerate(sorted(os.listdir(sys.argv[1]))):
    os.chown(os.path.join(sys.argv[1], n), *owners[i % len(owners)])
' `
    const runs = async (base: string): Promise<string> => {
      const out: string[] = []
      // as root: nodes left with their creation modes, then owned by several uids
      out.push(await ok(`mkdir made && chmod 755 made && python3 ${q(script)} made ${user.uid} ${user.gid} keep-modes && ${spread} made`, { cwd: base }))
      // as root: chowned and chmodded by the script
      out.push(await ok(`mkdir owned && python3 ${q(script)} owned ${user.uid} ${user.gid}`, { cwd: base }))
      // as the unprivileged user in a 1777 dir: fifos and sockets are its own, devices EPERM
      await ok('mkdir user && chmod 1777 user', { cwd: base })
      out.push(await ok(`python3 ${q(script)} ${q(join(base, 'user'))} ${user.uid} ${user.gid} user`, { user }))
      out.push(await ok(`stat -c '%n %F %a %u %g %t:%T' made/* user/*`, { cwd: base }))
      return out.join('---\n')
    }
    const disk = await runs(local)
    assert.doesNotMatch(disk, /fresh=False/)
    assert.equal(await runs(on(0, d)), disk)
    const nodes = (await ok('ls -d made/* owned/* user/*', { cwd: on(0, d) })).trim().split('\n')
    assert.equal(nodes.join('\n') + '\n', await ok('ls -d made/* owned/* user/*', { cwd: local }))
    // 2 umasks x 5 kinds x 10 modes as root, twice; as the user, all but most devices
    assert.ok(nodes.length > 250, String(nodes.length))
    await seen('the nodes', nodes, { cwd: d })
    // then chown and chmod of them all on A while B caches them
    await ok(`${spread.replace('owners[i % len(owners)]', 'owners[(i + 1) % len(owners)]')} made && chmod 0640 owned/*`, { cwd: on(0, d) })
    await seen('the new owners and modes', nodes, { cwd: d })
  })

  it('(7) truncate -s 999999999999999 on A: EFBIG, and both mounts live on; a sparse 1 TiB file made on A reads zeros on B', async () => {
    const d = await fresh('bounds')
    await ok('echo before > huge', { cwd: on(0, d) })
    const r = await sh('truncate -s 999999999999999 huge', { cwd: on(0, d) })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /File too large/)
    await alive()
    await seen('huge', ['huge'], { cwd: d })
    assert.equal(await ok('cat huge', { cwd: on(1, d) }), 'before\n')
    // a sparse 1 TiB file with six bytes in the middle
    await ok(`truncate -s 1T sparse && printf middle | dd of=sparse bs=1 seek=${TiB / 2} conv=notrunc status=none`, { cwd: on(0, d) })
    await seen('sparse', ['sparse'], { cwd: d })
    // the last 4 KiB, the 4 KiB after the six bytes (bytes read, and how many of them not zero), the six bytes
    const block = (n: number): string => `echo $(dd if=sparse bs=4096 skip=${n} count=1 status=none | wc -c) $(dd if=sparse bs=4096 skip=${n} count=1 status=none | tr -d '\\0' | wc -c)`
    const zeros = `${block(TiB / 4096 - 1)}; ${block(TiB / 8192 + 1)}; dd if=sparse bs=1 skip=${TiB / 2} count=6 status=none`
    assert.equal(await ok(zeros, { cwd: on(1, d) }), '4096 0\n4096 0\nmiddle')
    assert.equal(await ok(zeros, { cwd: on(0, d) }), '4096 0\n4096 0\nmiddle')
    // grown on A while B caches its size
    await ok('truncate -s 2T sparse', { cwd: on(0, d) })
    await seen('sparse grown', ['sparse'], { cwd: d })
    // and B writes on: A reads it
    await ok('echo from B > after', { cwd: on(1, d) })
    await until('A reads what B wrote after', async () => (await sh('cat after', { cwd: on(0, d) })).stdout === 'from B\n', SEEN_WITHIN_MS)
    await alive()
  })
})
