// The metadata half of scripts/bench/mount.ts, run in a child process (the process that serves
// a FUSE mount must not do blocking I/O on it). Usage: node _mount-meta.ts DIR FILES TARBALL
// Prints one JSON object of seconds for DIR: FILES creates of 4 KiB files in one directory
// (open, write, close each), `ls -l` of them, `rm -r` of the directory, and `tar x` of TARBALL
// (an archive of /usr/include made on the local disk beforehand) followed by `rm -r` of it.
// TARBALL may be '-' (no tar figures).
import { writeFileSync, mkdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

const [dir, filesArg, tarball] = process.argv.slice(2)
const FILES = Number(filesArg)
const FILE_SIZE = 4096

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9
const run = (cmd: string, args: string[]): void => { execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 256 << 20 }) }
const out: Record<string, number> = {}

const many = join(dir, 'meta')
mkdirSync(many)
const content = randomBytes(FILE_SIZE)
let t = process.hrtime.bigint()
for (let i = 0; i < FILES; i++) writeFileSync(join(many, `f${i}`), content)
out[`create${FILES}.s`] = seconds(t)
t = process.hrtime.bigint()
run('ls', ['-l', many])
out[`ls-l${FILES}.s`] = seconds(t)
t = process.hrtime.bigint()
run('rm', ['-r', many])
out[`rm-r${FILES}.s`] = seconds(t)

if (tarball !== undefined && tarball !== '-') {
  const into = join(dir, 'tar')
  mkdirSync(into)
  t = process.hrtime.bigint()
  run('tar', ['xf', tarball, '-C', into])
  out['tar-x-usr-include.s'] = seconds(t)
  t = process.hrtime.bigint()
  run('rm', ['-r', into])
  out['rm-r-usr-include.s'] = seconds(t)
}

process.stdout.write(JSON.stringify(out) + '\n')
