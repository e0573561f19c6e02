// `darkfs cat` (and `get`: the control socket's GET /v1/file) of a file that another host
// rewrites while the bytes stream (issue 16: the fault run's `WRONG READ /h4/f4 on h6`, on the
// host whose disk was full): what comes out is one version whole, never the first piece of one
// and the rest of the next, nor one version's bytes cut or padded to another's length.
// Deterministic: the reader's output is not drained, so the host streaming it waits inside the
// file (the first MiB piece) until the new version has reached it; then the output is read out.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { DARKFS, darkfs, up, upNetwork } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { run } from '../../harness/mesh.ts'

const MiB = 1 << 20
/** The full reader's tmpfs (as the fault run's full host: its reserve is 10% of it). */
const TMPFS_BYTES = 48 * MiB
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 12)
/** How many leading bytes two buffers share. */
const same = (a: Uint8Array, b: Uint8Array): number => { let i = 0; while (i < a.byteLength && i < b.byteLength && a[i] === b[i]) i++; return i }

/** The new version's size, against a first version of 3 MiB + 1. */
const NEXT = [['a longer', 3 * MiB + 777_777], ['a shorter', 2 * MiB + 123_456], ['an equally long', 3 * MiB + 1]] as const

let puts = 0
async function put (root: string, dir: string, path: string, data: Uint8Array): Promise<void> {
  const local = join(root, `put-${puts++}`)
  await writeFile(local, data)
  const r = await darkfs(['--data', dir, 'put', local, path])
  assert.equal(r.code, 0, r.stderr)
}

async function versions (dir: string, path: string): Promise<number> {
  const r = await darkfs(['--data', dir, 'log', '--json', path])
  return r.code === 0 ? JSON.parse(r.stdout).length : 0
}

/** Host `a` writes version 1, `b` starts a cat, `a` commits version 2 meanwhile: `b`'s cat gives version 1 whole. */
async function catWhileRewritten (root: string, a: string, b: string, path: string, next: number): Promise<void> {
  const v1 = randomBytes(3 * MiB + 1)
  const v2 = randomBytes(next)
  await put(root, a, path, v1)
  await until('the reader has the first version', async () => await versions(b, path) === 1, 60_000)

  const cat = spawn(DARKFS, ['--data', b, 'cat', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  cat.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => cat.once('exit', code => { resolve(code) }))
  // not drained: once the pipe and the socket are full, the reader's host waits mid-file
  await until('cat has started to stream', () => cat.stdout.readableLength > 0, 60_000)
  await put(root, a, path, v2)
  await until('the reader has the second version', async () => await versions(b, path) === 2, 60_000)

  const parts: Buffer[] = []
  for await (const p of cat.stdout) parts.push(p as Buffer)
  const code = await exited
  const got = Buffer.concat(parts)
  assert.equal(code, 0, `cat failed: ${stderr}`)
  assert.ok(got.equals(v1) || got.equals(v2), `cat gave ${got.byteLength} bytes (${sha(got)}), neither version 1 (${v1.byteLength} bytes, ${sha(v1)}) nor version 2 (${v2.byteLength} bytes, ${sha(v2)}); its first ${same(got, v1)} bytes are version 1's`)
  // its first bytes were out before version 2 existed: version 1 it is
  assert.ok(got.equals(v1), 'cat gave version 2 whole, though it had started on version 1')
}

describe('darkfs cat of a file rewritten on another host meanwhile (real processes)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  let dirs: string[]
  let root: string
  before(async () => {
    root = await tempDir(t)
    ;({ dirs } = await upNetwork(t, root, 2))
    await until('the two hosts see each other', async () => JSON.parse((await darkfs(['--data', dirs[1], 'peers', '--json'])).stdout || '[]').length === 1, 90_000)
  })
  after(async () => { await t.run() })

  for (const [what, next] of NEXT) {
    it(`cat on host B while host A commits ${what} version: version 1 whole`, async () => {
      await catWhileRewritten(root, dirs[0], dirs[1], `/f-${next}`, next)
    })
  }
})

describe('darkfs cat on a host whose disk is full (a small tmpfs), of a file rewritten elsewhere meanwhile (real processes)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  let root: string
  let dirs: string[]
  before(async () => {
    root = await tempDir(t)
    dirs = ['a', 'c', 'full'].map(n => join(root, n))
    await mkdir(dirs[2])
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dirs[2]])
    t.add(async () => { await run('umount', ['-l', dirs[2]]) })
    for (const [i, dir] of dirs.entries()) {
      const r = await darkfs(i === 0 ? ['init', '--data', dir, '--new-network'] : ['init', '--data', dir, '--network-key', join(dirs[0], 'network.key')])
      assert.equal(r.code, 0, r.stderr)
    }
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
    const first = await up(t, ['--data', dirs[0], ...listen])
    for (const dir of dirs.slice(1)) await up(t, ['--data', dir, ...listen, '--join', first.addresses[0]])
    for (const dir of dirs) await until(`${dir} sees the two others`, async () => JSON.parse((await darkfs(['--data', dir, 'peers', '--json'])).stdout || '[]').length === 2, 90_000)
    // ballast: all but a few MiB of the tmpfs, well under its reserve
    const fs = await statfs(dirs[2])
    await writeFile(join(dirs[2], 'ballast'), Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - 2 * MiB)))
    await until('the tmpfs host reports itself full', async () => JSON.parse((await darkfs(['--data', dirs[2], 'status', '--json'])).stdout || '{}').space?.full === true, 60_000)
  })
  after(async () => { await t.run() })

  for (const [what, next] of NEXT) {
    it(`cat on the full host while another commits ${what} version: version 1 whole`, async () => {
      await catWhileRewritten(root, dirs[0], dirs[2], `/g-${next}`, next)
    })
  }
})
