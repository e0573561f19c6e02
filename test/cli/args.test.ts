// The command line's grammar (node/cli/args.ts, issue 17 item 1): --help and bad options are
// handled before a command acts, so `darkfs leave --help` never makes a host leave; usage
// errors are one line with a pointer to the help; `--x=y`, grouped short flags and --version.
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'

describe('darkfs command line: options are checked before anything happens', function () {
  this.timeout(2 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let data: string
  let host: Up

  const cli = async (...args: string[]): Promise<string> => {
    const r = await darkfs(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }
  /** A usage error: exit 2, one line on stderr naming the problem and the help to read. */
  const usageError = async (args: string[], re: RegExp, help: string): Promise<void> => {
    const r = await darkfs(args)
    assert.equal(r.code, 2, `darkfs ${args.join(' ')}: exit 2, got ${String(r.code)}: ${r.stderr}`)
    const lines = r.stderr.split('\n').filter(l => l.trim() !== '')
    assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`)
    assert.match(lines[0], /^darkfs: /)
    assert.match(lines[0], re)
    assert.ok(lines[0].endsWith(`(see ${help})`), `points to ${help}: ${lines[0]}`)
    assert.equal(r.stdout, '')
  }
  const stillUp = async (): Promise<void> => {
    const s = JSON.parse(await cli('status', '--json'))
    assert.equal(typeof s.peerId, 'string')
    assert.ok(!host.lines.includes('stopped'), 'the host did not stop')
  }

  before(async () => {
    data = join(await tempDir(t), 'data')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--log', 'error'])
  })

  it('darkfs leave --help prints the help of leave, exits 0, and the host stays up', async () => {
    for (const help of ['--help', '-h']) {
      const r = await darkfs(['--data', data, 'leave', help])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /^usage: darkfs \[--data DIR\] leave\n/)
      assert.equal(r.stderr, '')
    }
    const heal = await darkfs(['--data', data, 'heal', '--help'])
    assert.equal(heal.code, 0, heal.stderr)
    assert.match(heal.stdout, /^usage: darkfs \[--data DIR\] heal\n/)
    await stillUp()
  })

  it('darkfs help COMMAND and COMMAND --help print the same help', async () => {
    const general = await darkfs(['--help'])
    assert.equal(general.code, 0)
    const listed = [...general.stdout.matchAll(/^ {2}darkfs ([a-z]+)\b/gm)].map(m => m[1])
    for (const c of ['init', 'up', 'heal', 'leave', 'put', 'get', 'ls', 'rm', 'pin', 'help']) assert.ok(listed.includes(c), `--help lists ${c}`)
    for (const c of ['up', 'leave', 'ls', 'help']) {
      const a = await darkfs([c, '--help'])
      const b = await darkfs(['help', c])
      assert.equal(a.code, 0, `${c} --help: ${a.stderr}`)
      assert.equal(a.stdout, b.stdout)
      assert.match(a.stdout, new RegExp(`^usage: darkfs \\[--data DIR\\] ${c}\\b`))
    }
    assert.match((await darkfs(['up', '--help'])).stdout, /--log LEVEL +silent \| error \| info \| debug \| trace/)
  })

  it('an unknown option fails before the command acts: leave --bogus, rm -rx, up --bogus --init-if-needed', async () => {
    await cli('mkdir', '-p', '/keep/sub')
    await usageError(['--data', data, 'leave', '--bogus'], /unknown option --bogus/, 'darkfs leave --help')
    await usageError(['--data', data, 'heal', '--now'], /unknown option --now/, 'darkfs heal --help')
    await usageError(['--data', data, 'rm', '-rx', '/keep'], /unknown option -x/, 'darkfs rm --help')
    assert.equal(await cli('ls', '/keep'), 'sub\n')
    await stillUp()
    // a fresh dir: `up --init-if-needed` with a bad option or value initialises nothing
    const fresh = join(await tempDir(t), 'fresh')
    await usageError(['up', '--data', fresh, '--init-if-needed', '--bogus'], /unknown option --bogus/, 'darkfs up --help')
    await usageError(['up', '--data', fresh, '--init-if-needed', '--log', 'loud'], /--log takes one of silent, error, info, debug, trace/, 'darkfs up --help')
    await usageError(['up', '--data', fresh, '--init-if-needed', '--redundancy', 'lots'], /--redundancy/, 'darkfs up --help')
    for (const bad of ['wide', '0', '33', '2.5', '1e1', 'AUTO', '']) {
      await usageError(['up', '--data', fresh, '--init-if-needed', '--data-fragments', bad], /--data-fragments takes auto or a whole number of data fragments per chunk from 1 to 32, got "/, 'darkfs up --help')
    }
    for (const bad of ['reed-solomon', 'CLAY', '']) {
      await usageError(['up', '--data', fresh, '--init-if-needed', '--codec', bad], /--codec takes rs or clay, got "/, 'darkfs up --help')
    }
    // within 1..32 but too wide with the redundancy: k + m is at most 32
    await usageError(['up', '--data', fresh, '--init-if-needed', '--data-fragments', '31'], /--data-fragments 31 with redundancy 2 makes 33 fragments per chunk, at most 32: take at most 30/, 'darkfs up --help')
    await usageError(['up', '--data', fresh, '--init-if-needed', '--redundancy', '4', '--data-fragments', '29'], /--data-fragments 29 with redundancy 4 makes 33 fragments/, 'darkfs up --help')
    await assert.rejects(stat(fresh), (err: any) => err.code === 'ENOENT', 'nothing was initialised')
  })

  it('darkfs status shows the code new chunks get and the policy (redundancy, --data-fragments)', async () => {
    // one host alone: a single copy (k=1, m=0) under the default policy
    const text = await cli('status')
    assert.match(text, /^placement 1\+0 for new chunks \(redundancy 2, data fragments at most 4\)$/m)
    // the network totals: this host alone keeps what there is (keeper/kept.ts)
    assert.match(text, /^network {3}\d+ chunks \([^)]*\) kept by 1 of 1 members up/m)
    const s = JSON.parse(await cli('status', '--json'))
    assert.deepEqual(s.placement, { k: 1, m: 0, redundancy: 2, dataFragments: 4 })
    assert.equal(s.network.reporting, 1)
    assert.equal(s.network.members, 1)
  })

  it('usage errors are one line with a pointer to --help', async () => {
    await usageError(['--data', data, 'frobnicate'], /unknown command 'frobnicate'/, 'darkfs --help')
    await usageError(['--data', data, 'put', '/x'], /put takes LOCAL PATH/, 'darkfs put --help')
    await usageError(['up', '--data', data, '--listen'], /--listen needs a value/, 'darkfs up --help')
    await usageError(['--data', data, 'status', '--json=yes'], /--json takes no value/, 'darkfs status --help')
    await usageError(['--data', data, '--data', data, 'status'], /--data given more than once/, 'darkfs status --help')
    await usageError(['--data', data, 'ls', '--long', '/'], /unknown option --long/, 'darkfs ls --help')
  })

  it('darkfs --version prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
    const r = await darkfs(['--version'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `darkfs ${String(version)}\n`)
  })

  it('--x=y works like --x y', async () => {
    assert.equal(JSON.parse((await darkfs([`--data=${data}`, 'stat', '--json', '/keep'])).stdout).kind, 'dir')
    assert.equal((await darkfs([`--data=${data}`, 'ls', '/keep'])).stdout, 'sub\n')
  })

  it('grouped short flags: rm -fr and rm -rf are -r -f', async () => {
    await cli('mkdir', '-p', '/g1/a/b')
    await cli('mkdir', '-p', '/g2/a/b')
    await cli('rm', '-fr', '/g1')
    await cli('rm', '-rf', '/g2')
    const names = (await cli('ls', '/')).split('\n')
    assert.ok(!names.includes('g1') && !names.includes('g2'), `both removed: ${names.join(' ')}`)
    await stillUp()
  })
})
