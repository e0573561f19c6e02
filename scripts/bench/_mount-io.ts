// The I/O half of scripts/bench/mount.ts, run in a child process: the process that serves a
// FUSE mount must not do blocking I/O on it. Usage: node _mount-io.ts DIR MIB [FILES]
// Prints one JSON object of figures (seconds and rates) for DIR. Write rates include the final
// fsync (on darkfs: commit and placement on peers); `*.fsync.s` is that fsync alone.
import { openSync, writeSync, readSync, fsyncSync, closeSync, mkdirSync, writeFileSync, unlinkSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { writeFile, unlink } from 'node:fs/promises'

const [dir, mibArg, filesArg] = process.argv.slice(2)
const mib = Number(mibArg)
/** Sequential I/O block. */
const BLOCK = 1024 * 1024
/** Random I/O size and count. */
const SMALL = 4096
const RANDOM_OPS = 2000
/** Files in the metadata test (default 5,000), and their size. */
const FILES = Number(filesArg ?? 5000)
const FILE_SIZE = 4096
/** Concurrent writers in the parallel metadata test (the libuv threadpool is sized to match). */
const PARALLEL = 8

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9
const out: Record<string, number> = {}

const big = join(dir, 'seq.bin')
const block = randomBytes(BLOCK)
let t = process.hrtime.bigint()
let fd = openSync(big, 'w')
for (let i = 0; i < mib; i++) {
  // every block distinct: equal chunks would be stored (and placed) once
  block.writeUInt32LE(i, 0)
  writeSync(fd, block, 0, BLOCK, i * BLOCK)
}
let f = process.hrtime.bigint()
fsyncSync(fd)
out['seq.fsync.s'] = seconds(f)
closeSync(fd)
out['seq.write.MiBps'] = mib / seconds(t)

const buf = Buffer.alloc(BLOCK)
t = process.hrtime.bigint()
fd = openSync(big, 'r')
let total = 0
for (;;) {
  const n = readSync(fd, buf, 0, BLOCK, total)
  if (n === 0) break
  total += n
}
closeSync(fd)
out['seq.read.MiBps'] = total / BLOCK / seconds(t)

const small = Buffer.alloc(SMALL)
const blocks = Math.floor(mib * BLOCK / SMALL)
fd = openSync(big, 'r+')
t = process.hrtime.bigint()
for (let i = 0; i < RANDOM_OPS; i++) readSync(fd, small, 0, SMALL, Math.floor(Math.random() * blocks) * SMALL)
out['rand4k.read.iops'] = RANDOM_OPS / seconds(t)
t = process.hrtime.bigint()
for (let i = 0; i < RANDOM_OPS; i++) writeSync(fd, small, 0, SMALL, Math.floor(Math.random() * blocks) * SMALL)
f = process.hrtime.bigint()
fsyncSync(fd)
out['rand4k.fsync.s'] = seconds(f)
out['rand4k.write.iops'] = RANDOM_OPS / seconds(t)
closeSync(fd)
unlinkSync(big)

const many = join(dir, 'many')
mkdirSync(many)
const content = randomBytes(FILE_SIZE)
t = process.hrtime.bigint()
for (let i = 0; i < FILES; i++) writeFileSync(join(many, `f${i}`), content)
out[`create${FILES}.s`] = seconds(t)
t = process.hrtime.bigint()
execFileSync('ls', ['-l', many], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 64 << 20 })
out[`ls-l${FILES}.s`] = seconds(t)
t = process.hrtime.bigint()
for (let i = 0; i < FILES; i++) unlinkSync(join(many, `f${i}`))
out[`delete${FILES}.s`] = seconds(t)
rmSync(many, { recursive: true })

// the same with PARALLEL writers at once (async calls from this process, which serves no mount):
// commits from concurrent requests should share the op log's fsyncs
const manyP = join(dir, 'many-parallel')
mkdirSync(manyP)
const each = async (fn: (i: number) => Promise<void>): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < FILES) await fn(next++)
  }))
}
t = process.hrtime.bigint()
await each(async i => { await writeFile(join(manyP, `f${i}`), content) })
out[`create${FILES}.parallel${PARALLEL}.s`] = seconds(t)
t = process.hrtime.bigint()
await each(async i => { await unlink(join(manyP, `f${i}`)) })
out[`delete${FILES}.parallel${PARALLEL}.s`] = seconds(t)
rmSync(manyP, { recursive: true })

process.stdout.write(JSON.stringify(out) + '\n')
