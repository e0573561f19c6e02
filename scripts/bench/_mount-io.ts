// The I/O half of scripts/bench/mount.ts, run in a child process: the process that serves a
// FUSE mount must not do blocking I/O on it. Usage: node _mount-io.ts DIR MIB
// Prints one JSON object of figures (seconds and rates) for DIR.
import { openSync, writeSync, readSync, fsyncSync, closeSync, mkdirSync, writeFileSync, unlinkSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

const [dir, mibArg] = process.argv.slice(2)
const mib = Number(mibArg)
/** Sequential I/O block. */
const BLOCK = 1024 * 1024
/** Random I/O size and count. */
const SMALL = 4096
const RANDOM_OPS = 2000
/** Files in the metadata test, and their size. */
const FILES = 5000
const FILE_SIZE = 4096

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9
const out: Record<string, number> = {}

const big = join(dir, 'seq.bin')
const block = randomBytes(BLOCK)
let t = process.hrtime.bigint()
let fd = openSync(big, 'w')
for (let i = 0; i < mib; i++) writeSync(fd, block, 0, BLOCK, i * BLOCK)
fsyncSync(fd)
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
fsyncSync(fd)
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

process.stdout.write(JSON.stringify(out) + '\n')
