// O_APPEND on a real mount (DESIGN.md §5: all handles of an inode on one host share one state;
// O_APPEND writes are atomic): every append made by any number of processes, handles or names
// of one file lands whole, once, at the end.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'
import { assertLines } from '../helpers/mount-scripts.ts'

/**
 * A script for the pinned Node (run in its own process: the process serving the mount must not
 * do I/O on it) that opens `names` with 'a' and writes `per` lines through each handle, the
 * handles' writes in flight at the same time.
 */
const TWO_HANDLES = `
const { open } = require('node:fs/promises')
const [dir, per, ...names] = process.argv.slice(2)
;(async () => {
  const hs = []
  for (const n of names) hs.push(await open(dir + '/' + n, 'a'))
  for (let i = 1; i <= Number(per); i++) {
    await Promise.all(hs.map((h, k) => h.write('H' + k + '-' + i + '\\n')))
  }
  for (const h of hs) await h.close()
})().catch(err => { console.error(err); process.exit(1) })
`

describe('mount: O_APPEND', function () {
  this.timeout(180_000)
  let t: Teardown
  let m: Mounted

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
  })
  afterEach(async function () { await t.run() })

  it('4 shell loops, 500 `echo >> log` each at once: all 2,000 lines, each once and whole', async function () {
    await ok(`for n in 1 2 3 4; do (for i in $(seq 500); do echo "L-$n-$i" >> log; done) & done; wait`, { cwd: m.dir })
    const expected = [1, 2, 3, 4].flatMap(n => Array.from({ length: 500 }, (_, i) => `L-${n}-${i + 1}`))
    assertLines(await ok('cat log', { cwd: m.dir }), expected)
  })

  it('two handles opened with \'a\' in one process, writes interleaved and concurrent', async function () {
    const script = join(await tempDir(t, 'darkfs-script-'), 'two.cjs')
    await writeFile(script, TWO_HANDLES)
    await ok(`'${process.execPath}' '${script}' '${m.dir}' 300 log log`)
    const expected = [0, 1].flatMap(k => Array.from({ length: 300 }, (_, i) => `H${k}-${i + 1}`))
    assertLines(await ok('cat log', { cwd: m.dir }), expected)
  })

  it('appends through two hard-linked names (two kernel inodes) land at the one end of file', async function () {
    await ok('echo first > log && ln log other', { cwd: m.dir })
    const script = join(await tempDir(t, 'darkfs-script-'), 'two.cjs')
    await writeFile(script, TWO_HANDLES)
    await ok(`'${process.execPath}' '${script}' '${m.dir}' 300 log other`)
    const expected = ['first', ...[0, 1].flatMap(k => Array.from({ length: 300 }, (_, i) => `H${k}-${i + 1}`))]
    assertLines(await ok('cat log', { cwd: m.dir }), expected)
    assert.equal(await ok('cmp log other && stat -c %s log other | uniq | wc -l', { cwd: m.dir }), '1\n')
  })
})
