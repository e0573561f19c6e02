// Two real `darkfs up --mount` processes on loopback TCP, driven through their mounts with
// shell commands (never from this process's own event loop, which serves no mount here but
// keeps the tests shaped like the single-host mount tests): close-to-open across hosts,
// unlink and rename from a peer, and concurrent edits of one directory from both hosts.
import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Teardown } from '../../harness/tmp.ts'
import { darkfs } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'
import { initHosts, startMounted } from '../helpers/mounted-hosts.ts'

/** How long a change may take to show on the other host before the test fails (liveness only). */
const SEEN_WITHIN_MS = 15_000

/** renameat2(a, b, RENAME_EXCHANGE) as a script (python3: scripts/setup installs it; Node has no renameat2). */
const EXCHANGE_PY = join(dirname(fileURLToPath(import.meta.url)), '../helpers/exchange.py')

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

describe('two hosts, each `darkfs up --mount`', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  const data: string[] = []
  const mnt: string[] = []
  const hosts: Up[] = []

  before(async () => {
    const made = await initHosts(t, 'darkfs-two-', 2)
    data.push(...made.data)
    mnt.push(...made.mnt)
    for (let i = 0; i < 2; i++) hosts.push(await startMounted(t, made, i, i === 0 ? [] : ['--join', hosts[0].addresses[0]]))
    await until('the hosts see each other', async () => {
      const r = await darkfs(['--data', data[1], 'peers', '--json'])
      return r.code === 0 && JSON.parse(r.stdout).length === 1
    }, SEEN_WITHIN_MS)
  })

  const cat = async (i: number, path: string): Promise<string | undefined> => {
    const r = await sh(`cat ${q(join(mnt[i], path))}`)
    return r.code === 0 ? r.stdout : undefined
  }
  const exists = async (i: number, path: string): Promise<boolean> => (await sh(`test -e ${q(join(mnt[i], path))}`)).code === 0

  it('a file closed on host A opens with its new content on host B (close-to-open)', async () => {
    await ok(`printf 'version one\\n' > ${q(join(mnt[0], 'note.txt'))}`)
    await until('B reads version one', async () => await cat(1, 'note.txt') === 'version one\n', SEEN_WITHIN_MS)
    // same size, new bytes: B must not serve its cached pages of the old version
    await ok(`printf 'version two\\n' > ${q(join(mnt[0], 'note.txt'))}`)
    await until('B reads version two', async () => await cat(1, 'note.txt') === 'version two\n', SEEN_WITHIN_MS)
    // and back from B to A, with a multi-chunk file written in place
    await ok(`head -c 3000000 /dev/urandom > ${q(join(mnt[1], 'big.bin'))}`)
    const sum = (await ok(`sha256sum < ${q(join(mnt[1], 'big.bin'))}`)).split(' ')[0]
    await until('A reads big.bin', async () => (await sh(`sha256sum < ${q(join(mnt[0], 'big.bin'))}`)).stdout.split(' ')[0] === sum, SEEN_WITHIN_MS)
    await ok(`printf 'patched' | dd of=${q(join(mnt[1], 'big.bin'))} bs=1 seek=1048570 conv=notrunc status=none`)
    const sum2 = (await ok(`sha256sum < ${q(join(mnt[1], 'big.bin'))}`)).split(' ')[0]
    assert.notEqual(sum2, sum)
    await until('A reads the patched big.bin', async () => (await sh(`sha256sum < ${q(join(mnt[0], 'big.bin'))}`)).stdout.split(' ')[0] === sum2, SEEN_WITHIN_MS)
  })

  it('unlink on host A removes the file from host B\'s mount', async () => {
    await ok(`mkdir -p ${q(join(mnt[0], 'gone'))} && echo bye > ${q(join(mnt[0], 'gone/f'))}`)
    await until('B sees gone/f', async () => await cat(1, 'gone/f') === 'bye\n', SEEN_WITHIN_MS)
    // B has looked the entry up (and cached it): now A removes it
    await ok(`stat ${q(join(mnt[1], 'gone/f'))} > /dev/null && rm ${q(join(mnt[0], 'gone/f'))}`)
    await until('B no longer has gone/f', async () => !(await exists(1, 'gone/f')), SEEN_WITHIN_MS)
    assert.equal(await ok(`ls -A ${q(join(mnt[1], 'gone'))}`), '')
    assert.equal(await cat(1, 'gone/f'), undefined)
  })

  it('rename on host A moves the file in host B\'s mount (and over an existing one)', async () => {
    await ok(`mkdir -p ${q(join(mnt[0], 'mv/sub'))} && echo moving > ${q(join(mnt[0], 'mv/a'))} && echo old > ${q(join(mnt[0], 'mv/sub/b'))}`)
    await until('B sees mv/a and mv/sub/b', async () => await cat(1, 'mv/a') === 'moving\n' && await cat(1, 'mv/sub/b') === 'old\n', SEEN_WITHIN_MS)
    await ok(`mv ${q(join(mnt[0], 'mv/a'))} ${q(join(mnt[0], 'mv/sub/b'))}`)
    await until('B reads the moved file under its new name', async () => await cat(1, 'mv/sub/b') === 'moving\n', SEEN_WITHIN_MS)
    await until('B no longer has mv/a', async () => !(await exists(1, 'mv/a')), SEEN_WITHIN_MS)
    assert.equal(await ok(`ls -A ${q(join(mnt[1], 'mv'))}`), 'sub\n')
    assert.equal(await ok(`ls -A ${q(join(mnt[1], 'mv/sub'))}`), 'b\n')
    // a directory rename carries its contents
    await ok(`mv ${q(join(mnt[0], 'mv/sub'))} ${q(join(mnt[0], 'mv/renamed'))}`)
    await until('B sees mv/renamed/b', async () => await cat(1, 'mv/renamed/b') === 'moving\n', SEEN_WITHIN_MS)
    await until('B no longer has mv/sub', async () => !(await exists(1, 'mv/sub')), SEEN_WITHIN_MS)
  })

  it('renameat2 RENAME_EXCHANGE on host A swaps a file and a directory in host B\'s mount, nothing left over', async () => {
    await ok(`mkdir -p ${q(join(mnt[0], 'xch/d'))} && echo inside > ${q(join(mnt[0], 'xch/d/in'))} && echo file > ${q(join(mnt[0], 'xch/f'))}`)
    await until('B sees xch/d/in and xch/f', async () => await cat(1, 'xch/d/in') === 'inside\n' && await cat(1, 'xch/f') === 'file\n', SEEN_WITHIN_MS)
    await ok(`python3 ${q(EXCHANGE_PY)} ${q(join(mnt[0], 'xch/f'))} ${q(join(mnt[0], 'xch/d'))}`)
    await until('B reads the file at xch/d and the directory at xch/f', async () => await cat(1, 'xch/d') === 'file\n' && await cat(1, 'xch/f/in') === 'inside\n', SEEN_WITHIN_MS)
    for (const i of [0, 1]) assert.equal(await ok(`ls -A ${q(join(mnt[i], 'xch'))}`), 'd\nf\n', `host ${i}`)
  })

  it('both hosts editing different files of one directory at once: each sees both', async () => {
    const N = 20
    await ok(`mkdir -p ${q(join(mnt[0], 'shared'))}`)
    await until('B sees shared/', async () => await exists(1, 'shared'), SEEN_WITHIN_MS)
    const writer = (i: number, tag: string): string =>
      `for n in $(seq 1 ${N}); do echo "${tag} $n" > ${q(join(mnt[i], 'shared'))}/${tag}-$n; echo "${tag} $n again" >> ${q(join(mnt[i], 'shared'))}/${tag}-$n; done`
    await Promise.all([ok(writer(0, 'a')), ok(writer(1, 'b'))])
    const want = [...Array.from({ length: N }, (_, n) => `a-${n + 1}`), ...Array.from({ length: N }, (_, n) => `b-${n + 1}`)].sort()
    for (const i of [0, 1]) {
      await until(`host ${i} lists all ${2 * N} files`, async () => {
        const r = await sh(`ls -A ${q(join(mnt[i], 'shared'))}`)
        return r.code === 0 && JSON.stringify(r.stdout.split('\n').filter(s => s !== '').sort()) === JSON.stringify(want)
      }, SEEN_WITHIN_MS)
      for (const name of want) {
        const [tag, n] = name.split('-')
        await until(`host ${i} reads ${name}`, async () => await cat(i, `shared/${name}`) === `${tag} ${n}\n${tag} ${n} again\n`, SEEN_WITHIN_MS)
      }
    }
    const conflicts = await darkfs(['--data', data[0], 'conflicts'])
    assert.equal(conflicts.stdout, '')
  })

  it('rm -rf on host A (holding a file of it open) while host B lists the directory and holds another open: one pass, gone on both, B reads on', async () => {
    const N = 300
    const a = q(join(mnt[0], 'scratch'))
    const b = q(join(mnt[1], 'scratch'))
    await ok(`mkdir -p ${a}/sub && cd ${a} && for i in $(seq 1 ${N}); do echo "$i" > "f$i"; done && echo held > sub/held`)
    await until(`B lists the ${N} files`, async () => (await sh(`ls ${b} | wc -l`)).stdout === `${N + 1}\n`, SEEN_WITHIN_MS)
    // B: a reader holding sub/held open, and a lister, until the directory is gone there
    const holder = sh(`exec 3<${b}/sub/held && while [ -d ${b} ]; do sleep 0.2; done; python3 -c "import os; print(os.pread(3, 100, 0).decode(), end='')"`)
    const lister = sh(`n=0; while [ -d ${b} ]; do ls -f ${b} > /dev/null 2>&1; n=$((n+1)); done; echo "listed $n"`)
    await until('B holds sub/held', async () => (await sh(`ls -l /proc/*/fd 2>/dev/null | grep -c ${q(join(mnt[1], 'scratch/sub/held'))}`)).stdout.trim() !== '0', SEEN_WITHIN_MS)
    // A holds one of the files open too: its name goes with the rest (no hidden entry on either host)
    const r = await sh(`exec 4<${a}/f1; rm -rf ${a}; echo "rc=$?"; test -e ${a} && find ${a}; exec 4<&-`)
    assert.equal(r.stderr, '')
    assert.equal(r.stdout, 'rc=0\n')
    const listed = await lister
    assert.match(listed.stdout, /^listed [1-9]\d*\n$/, listed.stderr)
    // by its handle (an fstat of it on B would ask libfuse by its old path, gone there: ENOENT)
    const held = await holder
    assert.equal(held.stdout, 'held\n', held.stderr)
    assert.equal(await exists(1, 'scratch'), false)
    assert.equal(await exists(0, 'scratch'), false)
  })
})
