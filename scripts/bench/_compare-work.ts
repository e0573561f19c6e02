// The workloads of compare.ts, each run by outside programs in child processes (fio, sqlite3,
// tar, git: this process serves the darkfs mounts and must not touch them itself), each with a
// deadline (_proc.ts), each giving one figure for one directory:
//   seqwrite.MiBps         fio, 1 MiB sequential writes of the whole file, then fsync (end_fsync)
//   placed.s               (darkfs) from the end of that write + fsync until no chunk waits for placement
//   coldread.MiBps         fio, 1 MiB sequential reads of the file after caches were dropped (on
//                          darkfs with six hosts, through another host's mount)
//   randread.iops          fio, 4 KiB random reads, O_DIRECT, queue depth 1, for SECONDS, caches
//                          dropped first (same reader as coldread)
//   randwrite.iops         fio, 4 KiB random writes, O_DIRECT, queue depth 1, for SECONDS
//   randwrite-fsync16.iops fio, 4 KiB random writes (buffered), fsync every 16 writes, for SECONDS
//   sqlite-delete.s        sqlite3: 10,000 rows in one transaction, 100 single-row transactions,
//   sqlite-wal.s           an update, a delete and a VACUUM (journal_mode=DELETE, then WAL)
//   tar.s                  `tar x` of an archive of /usr/include made on the local disk first
//   git-clone.s            `git clone --no-local` of a 1,000-file repository on the local disk
//   smallfiles.s           5,000 files of 1 to 4 KiB (distinct bytes) in 10 directories, each
//                          created and written by one bash process (printf, a builtin: no process
//                          per file), less that script's own time (the same loop writing to
//                          /dev/null, measured on the local disk: Work.smallOverhead)
//   smallfiles-rm.s        `rm -r` of that tree
// fio's write rate is timed around the whole fio process (its own runtime leaves end_fsync out,
// and the fsync is what this figure is about), less fio's start-up time measured on the local disk.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { runCommand, sh } from './_proc.ts'

const MiB = 1 << 20
/** The file the fio workloads share. */
export const FIO_FILE = 'fio.bin'
/** Files in the repository `git clone` copies, and their spread over directories. */
const GIT_FILES = 1000
const GIT_DIRS = 20
/** The tree the tar figure extracts. */
const TAR_SOURCE = '/usr/include'

/** Where a workload runs, and what it may ask of the system under it. */
export interface Target {
  /** Where the workloads write. */
  dir: string
  /** Where the cold and random reads read the fio file (another host's mount, for darkfs on six hosts). */
  readDir: string
  /** Make the next read of the fio file cold (drop the system's caches; the kernel's are dropped after). */
  cold: () => Promise<void>
  /** Seconds until every chunk written is placed (darkfs with peers only). */
  placed?: (timeoutMs: number) => Promise<number>
  /** Streams opened so far per libp2p protocol, over the hosts in this process (darkfs only). */
  streams?: () => Map<string, number>
  /** The reading host's read counters (ChunkService.readCounters(); darkfs only): what its reads fetched. */
  reads?: () => Record<string, number>
  /** The writing host's parity pool counters (ChunkService.shardPool; darkfs only): how often a write coded into recycled memory. */
  parity?: () => Record<string, number>
  /** Bytes the writing host's store put and deleted so far (Store.counters; darkfs only): what a write costs its disk. */
  disk?: () => { added: number, removed: number, syncs?: number }
  /**
   * The writer's fsyncs answered so far through its mount (darkfs only): when each was answered
   * (performance.now() ms) and how long it took (ms).
   */
  fsyncs?: () => ReadonlyArray<readonly [number, number]>
  /**
   * The writer's requests through its mount so far, per kind (count, ms), and its own ops per
   * type (darkfs only): what a cell spent outside its fsyncs, and the background work (folds)
   * among its ops.
   */
  requests?: () => { fuse: Map<string, [number, number]>, ops: Map<string, number> }
}

/** What the workloads share in one run: sizes, deadlines, the archive and repository to copy. */
export interface Work {
  mib: number
  seconds: number
  /** fio's own start-up time, s (subtracted from timed fio runs). */
  fioOverhead: number
  /** The small-file script's own time (its loop writing to /dev/null), s, subtracted from smallfiles.s. */
  smallOverhead: number
  tarball: string | undefined
  gitSource: string
  /** A workload's deadline, ms: its default, capped by DARKFS_COMPARE_TIMEOUT_S when set. */
  deadline: (defaultMs: number) => number
}

export interface Workload {
  key: string
  /** Its figure; throws (error text in the cell) when it cannot be measured. */
  run: (t: Target, w: Work) => Promise<number>
  /** The workload whose files it needs (it fails at once when that one failed; that one's files are kept for it). */
  after?: string
  /** Only for targets with placement. */
  onlyPlaced?: boolean
  /** What it leaves behind, removed after it (also when it failed), outside its timing and deadline. */
  leaves?: string
}

/** fio's JSON report (stdout may carry warnings before it). */
function fioJson (stdout: string): any {
  const i = stdout.indexOf('{')
  const j = stdout.lastIndexOf('}')
  if (i < 0 || j < i) throw new Error(`fio printed no report: ${stdout.slice(0, 200)}`)
  return JSON.parse(stdout.slice(i, j + 1))
}

async function fio (w: Work, file: string, args: string[], timeoutMs: number): Promise<{ job: any, seconds: number }> {
  const r = await sh('fio', ['--name=compare', `--filename=${file}`, '--ioengine=psync', '--fallocate=none', '--output-format=json', `--size=${w.mib}M`, ...args], { timeoutMs })
  const job = fioJson(r.stdout).jobs[0]
  if (job.error !== 0) throw new Error(`fio error ${String(job.error)}`)
  return { job, seconds: r.seconds }
}

const randomArgs = (w: Work): string[] => ['--bs=4k', '--iodepth=1', `--runtime=${w.seconds}`, '--time_based']
const randomMs = (w: Work): number => w.deadline((w.seconds + 180) * 1000)
const bigMs = (w: Work): number => w.deadline(120_000 + w.mib * 1000)
const LONG_MS = 20 * 60_000

/** Drop the kernel's page, dentry and inode caches (after the system's own). */
async function dropKernelCaches (): Promise<void> {
  await sh('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { timeoutMs: 120_000 })
}

/** The SQLite workload's script. */
function sqliteScript (journal: 'DELETE' | 'WAL'): string {
  const lines = [
    `PRAGMA journal_mode=${journal};`,
    'CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER);',
    'BEGIN;',
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) INSERT INTO t (a, b) SELECT hex(randomblob(32)), x FROM c;',
    'COMMIT;'
  ]
  // each statement outside BEGIN is a transaction of its own
  for (let i = 0; i < 100; i++) lines.push(`INSERT INTO t (a, b) VALUES ('row ${i}', ${i});`)
  lines.push('UPDATE t SET b = b + 1 WHERE id % 10 = 0;', 'DELETE FROM t WHERE id % 3 = 0;', 'VACUUM;')
  return lines.join('\n') + '\n'
}

async function sqlite (t: Target, w: Work, journal: 'DELETE' | 'WAL'): Promise<number> {
  const dir = join(t.dir, `sqlite-${journal.toLowerCase()}`)
  await sh('mkdir', ['-p', dir])
  const r = await sh('sqlite3', ['-bail', join(dir, 'db.sqlite')], { input: sqliteScript(journal), timeoutMs: w.deadline(LONG_MS) })
  return r.seconds
}

/** The small-file tree of smallfiles.s and smallfiles-rm.s. */
const SMALL_DIR = 'smallfiles'
const SMALL_FILES = 5000
const SMALL_DIRS = 10

/** Remove what a workload left (not timed; a failure is reported, not thrown: the figure stands). */
export async function clean (t: Target, wl: Workload, w: Work): Promise<void> {
  if (wl.leaves === undefined) return
  const path = join(t.dir, wl.leaves)
  const r = await runCommand('rm', ['-rf', path], { timeoutMs: w.deadline(LONG_MS) }).catch((err: Error) => ({ code: -1, stderr: err.message }))
  if (r.code !== 0) process.stdout.write(`  compare: could not remove ${path}: ${r.stderr.trim().split('\n')[0]}\n`)
}

export const WORKLOADS: Workload[] = [
  {
    key: 'seqwrite.MiBps',
    run: async (t, w) => {
      const { seconds } = await fio(w, join(t.dir, FIO_FILE), ['--rw=write', '--bs=1M', '--end_fsync=1'], bigMs(w))
      return fioRate(w, seconds)
    }
  },
  {
    key: 'placed.s',
    after: 'seqwrite.MiBps',
    onlyPlaced: true,
    run: async (t, w) => await t.placed!(bigMs(w))
  },
  {
    key: 'coldread.MiBps',
    after: 'seqwrite.MiBps',
    run: async (t, w) => {
      await t.cold()
      await dropKernelCaches()
      const { job } = await fio(w, join(t.readDir, FIO_FILE), ['--rw=read', '--bs=1M', '--readonly'], bigMs(w))
      return job.read.bw_bytes / MiB
    }
  },
  {
    key: 'randread.iops',
    after: 'seqwrite.MiBps',
    run: async (t, w) => {
      // from cold caches too: O_DIRECT passes the kernel's, but darkfs keeps decoded chunks (and
      // GlusterFS's client its io-cache), which the cold read just filled with the whole file
      await t.cold()
      return (await fio(w, join(t.readDir, FIO_FILE), ['--rw=randread', '--direct=1', '--readonly', ...randomArgs(w)], randomMs(w))).job.read.iops
    }
  },
  {
    key: 'randwrite.iops',
    after: 'seqwrite.MiBps',
    run: async (t, w) => (await fio(w, join(t.dir, FIO_FILE), ['--rw=randwrite', '--direct=1', ...randomArgs(w)], randomMs(w))).job.write.iops
  },
  {
    key: 'randwrite-fsync16.iops',
    after: 'seqwrite.MiBps',
    run: async (t, w) => (await fio(w, join(t.dir, FIO_FILE), ['--rw=randwrite', '--fsync=16', ...randomArgs(w)], randomMs(w))).job.write.iops,
    // the last workload on the fio file
    leaves: FIO_FILE
  },
  { key: 'sqlite-delete.s', run: async (t, w) => await sqlite(t, w, 'DELETE'), leaves: 'sqlite-delete' },
  { key: 'sqlite-wal.s', run: async (t, w) => await sqlite(t, w, 'WAL'), leaves: 'sqlite-wal' },
  {
    key: 'tar.s',
    run: async (t, w) => {
      if (w.tarball === undefined) throw new Error(`no ${TAR_SOURCE} to archive`)
      const dir = join(t.dir, 'tar')
      await sh('mkdir', ['-p', dir])
      const r = await sh('tar', ['xf', w.tarball, '-C', dir], { timeoutMs: w.deadline(LONG_MS) })
      return r.seconds
    },
    leaves: 'tar'
  },
  {
    key: 'git-clone.s',
    run: async (t, w) => {
      const dir = join(t.dir, 'clone')
      const r = await sh('git', ['clone', '-q', '--no-local', w.gitSource, dir], { timeoutMs: w.deadline(LONG_MS) })
      return r.seconds
    },
    leaves: 'clone'
  },
  {
    key: 'smallfiles.s',
    run: async (t, w) => {
      // by absolute path, never as the cwd: spawn() blocks this process's event loop until the
      // child's exec, and a chdir into a mount this process serves (darkfs in-process) waits on
      // that loop: a deadlock ended by the request deadline (EIO), whenever the kernel has no
      // cached attributes of the directory
      const r = await sh('bash', ['-c', smallFilesScript(join(t.dir, SMALL_DIR))], { env: C_LOCALE, timeoutMs: w.deadline(LONG_MS) })
      return r.seconds - w.smallOverhead
    },
    leaves: SMALL_DIR
  },
  {
    key: 'smallfiles-rm.s',
    after: 'smallfiles.s',
    run: async (t, w) => (await sh('rm', ['-r', join(t.dir, SMALL_DIR)], { timeoutMs: w.deadline(LONG_MS) })).seconds,
    leaves: SMALL_DIR
  }
]

/**
 * The bash script that makes SMALL_FILES files of 1 to 4 KiB in SMALL_DIRS directories under
 * `dir` (an absolute path with no quote in it); with `dir` undefined, the same loop writes every file to
 * /dev/null (its own time). Each file's bytes differ (its number first, then a slice of one
 * random text), so no system stores two as one.
 */
export function smallFilesScript (dir: string | undefined): string {
  const target = dir === undefined ? '/dev/null' : `'${dir}'/d$((i % ${SMALL_DIRS}))/f$i`
  return [
    'set -e',
    // 4,096 characters of random text (one subshell and head, before the loop)
    'data=$(head -c 3072 /dev/urandom | base64 -w0)',
    dir === undefined ? ':' : `for ((d = 0; d < ${SMALL_DIRS}; d++)); do mkdir -p '${dir}'/d$d; done`,
    // 1,024 to 4,095 bytes: 6 of the number and its space, the rest of the text
    `for ((i = 0; i < ${SMALL_FILES}; i++)); do printf '%05d %s' $i "\${data:0:$((1018 + (i * 1237) % 3072))}" > ${target}; done`
  ].join('\n') + '\n'
}

/** bash's substrings are byte slices in the C locale (a third of the loop's time in a UTF-8 one). */
const C_LOCALE = { ...process.env, LC_ALL: 'C' }

/** The small-file script's own time: the quickest of three runs of its loop writing to /dev/null. */
export async function smallFilesOverhead (): Promise<number> {
  let best = Infinity
  for (let i = 0; i < 3; i++) best = Math.min(best, (await sh('bash', ['-c', smallFilesScript(undefined)], { env: C_LOCALE, timeoutMs: 120_000 })).seconds)
  return best
}

/**
 * fio's start-up and tear-down time: the quickest of three runs of one 1 MiB block on the local
 * disk `dir`. One run alone can catch a sync of a disk busy with others' writes: it once came out
 * longer than the local disk's whole 1 GiB write, and that figure came out as 1,024,000 MiB/s.
 */
export async function fioOverhead (dir: string): Promise<number> {
  let best = Infinity
  for (let i = 0; i < 3; i++) {
    const r = await sh('fio', ['--name=overhead', `--filename=${join(dir, 'overhead.bin')}`, '--ioengine=psync', '--fallocate=none', '--output-format=json', '--size=1M', '--rw=write', '--bs=1M', '--end_fsync=1'], { timeoutMs: 60_000 })
    await runCommand('rm', ['-f', join(dir, 'overhead.bin')])
    best = Math.min(best, r.seconds)
  }
  return best
}

/** MiB per second of `mib` written in `seconds` of a fio run, less fio's own overhead. */
function fioRate (w: Work, seconds: number): number {
  const net = seconds - w.fioOverhead
  // a run no longer than fio's start-up has no figure: an error in the cell, not a made-up rate
  if (net < seconds / 4) throw new Error(`fio ran ${seconds.toFixed(2)} s, about its own overhead (${w.fioOverhead.toFixed(2)} s): no rate`)
  return w.mib / net
}

/** An archive of TAR_SOURCE in `base` (local disk); undefined when there is none. */
export async function makeTarball (base: string): Promise<string | undefined> {
  const file = join(base, 'usr-include.tar')
  const r = await runCommand('tar', ['cf', file, '-C', '/', TAR_SOURCE.slice(1)], { timeoutMs: 600_000 })
  return r.code === 0 ? file : undefined
}

/** A git repository of GIT_FILES small files in GIT_DIRS directories, one commit, at base/git-source. */
export async function makeGitSource (base: string): Promise<string> {
  const src = join(base, 'git-source')
  for (let d = 0; d < GIT_DIRS; d++) await mkdir(join(src, `d${d}`), { recursive: true })
  for (let i = 0; i < GIT_FILES; i++) {
    // text of a few KiB, distinct per file (git stores equal blobs once)
    await writeFile(join(src, `d${i % GIT_DIRS}`, `f${i}.txt`), `file ${i}\n` + randomBytes(1024 + (i % 7) * 512).toString('base64') + '\n')
  }
  const git = async (...args: string[]): Promise<void> => { await sh('git', ['-C', src, '-c', 'user.name=bench', '-c', 'user.email=bench@localhost', ...args], { timeoutMs: 120_000 }) }
  await git('init', '-q')
  await git('add', '.')
  await git('commit', '-q', '-m', 'bench')
  return src
}
