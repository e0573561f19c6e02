// Benchmark of a small-transaction database on the FUSE mount against the local disk (issue 15:
// positioned extents): sqlite3 (journal_mode=DELETE) inserts 10,000 rows in one transaction,
// then runs 100 single-row transactions, an update, a delete and VACUUM, each commit fsyncing
// the journal and the database. Figures: seconds of the whole run on each (`sqlite.local.s`,
// `sqlite.mount.s`, best of DARKFS_BENCH_SQLITE_RUNS, default 3); the same in journal_mode=WAL
// (`sqlite.wal.local.s`, `sqlite.wal.mount.s`: each commit appends to the -wal file and fsyncs
// it). The mount serves the real Volume in a temp data dir; sqlite3 runs in a child process (this
// process serves the mount).
import { mkdtemp, rm, chmod, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mount } from '../../fuse/index.ts'

const exec = promisify(execFile)

/** The workload, as sqlite3 reads it on stdin. */
function workload (journal: 'DELETE' | 'WAL'): string {
  const lines = [
    `PRAGMA journal_mode=${journal};`,
    'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);',
    "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) INSERT INTO t (v, n) SELECT printf('row %d %s', x, hex(randomblob(20))), x FROM c; COMMIT;"
  ]
  for (let i = 0; i < 100; i++) lines.push(`INSERT INTO t (v, n) VALUES ('single ${i}', ${i});`)
  lines.push("UPDATE t SET v = v || ' upd' WHERE n % 10 = 0;", 'DELETE FROM t WHERE n % 3 = 0;', 'VACUUM;', 'PRAGMA integrity_check;')
  return lines.join('\n') + '\n'
}

/** Seconds sqlite3 takes to run the workload on a new database in `dir` (its output checked). */
async function once (dir: string, sql: string, i: number, journal: string): Promise<number> {
  const started = performance.now()
  const { stdout } = await exec('sh', ['-c', `sqlite3 '${join(dir, `db${i}-${journal}.sqlite`)}' < '${sql}'`], { maxBuffer: 1 << 20 })
  const s = (performance.now() - started) / 1000
  if (stdout !== `${journal.toLowerCase()}\nok\n`) throw new Error(`sqlite3 said ${JSON.stringify(stdout)}`)
  return s
}

async function best (dir: string, sql: string, runs: number, journal: string): Promise<number> {
  let min = Infinity
  for (let i = 0; i < runs; i++) min = Math.min(min, await once(dir, sql, i, journal))
  return min
}

export async function run (): Promise<Record<string, number | string>> {
  const runs = Number(process.env.DARKFS_BENCH_SQLITE_RUNS ?? 3)
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-sqlite-'))
  const figures: Record<string, number | string> = {}
  try {
    await chmod(base, 0o755)
    const sql = join(base, 'workload.sql')
    const wal = join(base, 'workload-wal.sql')
    await writeFile(sql, workload('DELETE'))
    await writeFile(wal, workload('WAL'))
    const local = await mkdtemp(join(base, 'local-'))
    figures['sqlite.local.s'] = await best(local, sql, runs, 'DELETE')
    figures['sqlite.wal.local.s'] = await best(local, wal, runs, 'WAL')
    const { Volume } = await import('../../node/index.ts')
    const volume = await Volume.open({ dir: await mkdtemp(join(base, 'data-')) })
    const dir = await mkdtemp(join(base, 'mnt-'))
    const m = await mount(volume, dir)
    try {
      figures['sqlite.mount.s'] = await best(dir, sql, runs, 'DELETE')
      figures['sqlite.wal.mount.s'] = await best(dir, wal, runs, 'WAL')
    } finally {
      await m.unmount()
      await volume.close()
    }
  } finally {
    await rm(base, { recursive: true, force: true })
  }
  return figures
}
