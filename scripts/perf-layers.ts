// Where a darkfs process's CPU goes, by layer and by thread, from perf's samples (issue 15: the
// six-host compare cells are CPU-bound, and V8's own profiles misattribute time on oversubscribed
// cores; perf does not). Reads the text of `perf script -F comm,ip,sym` (call graphs recorded with
// -g; JS frames named when the process ran with --perf-basic-prof) and prints, for each layer, its
// share of all samples and how that share splits between the threads: the main thread (in the
// compare bench: the writer's and the reader's hosts), the host worker threads (WorkerThread),
// libuv's pool (disk I/O and the addon's jobs), V8's helper threads (concurrent marking and
// sweeping) and fio. Each sample counts once, for the first layer (in the order below) that one of
// its frames belongs to. For example, with the compare bench's perf control (its header):
//   perf record -F 499 -g -D -1 --control fifo:CTL,ACK -o perf.data -- env NODE_OPTIONS=--perf-basic-prof DARKFS_PERF_CTL=CTL ... npm run bench
//   perf script -i perf.data -F comm,ip,sym > perf.txt && npx node scripts/perf-layers.ts perf.txt
import { readFileSync } from 'node:fs'

interface Sample { comm: string, frames: string[] }
type Rule = (comm: string, frames: string[]) => boolean

const some = (frames: string[], test: (f: string) => boolean): boolean => frames.some(test)
const has = (...parts: string[]) => (_comm: string, frames: string[]) => some(frames, f => parts.some(p => f.includes(p)))

/** Layers in the order a sample is given to the first that matches. */
const LAYERS: Array<[string, Rule]> = [
  ['GC (V8)', (comm, frames) => comm === 'node-V8Worker' || some(frames, f => /v8::internal::(Heap::|Scaveng|MarkCompact|Sweep|ConcurrentMarking|IncrementalMarking|MinorMark)/.test(f))],
  ['FUSE (kernel)', (_c, frames) => some(frames, f => f.startsWith('fuse_'))],
  ['sha256', has('sha256')],
  ['pnet xsalsa20', has('xsalsa20', 'salsa_block')],
  ['Noise chacha20-poly1305', has('ChaCha20', 'poly1305')],
  ['ISA-L erasure code', (_c, frames) => some(frames, f => f.startsWith('gf_'))],
  ['TCP send (loopback: the receive path too)', has('tcp_sendmsg')],
  ['TCP receive', has('tcp_recvmsg')],
  ['fsync', has('sys_fsync', 'sys_fdatasync')],
  ['file writes (page cache)', has('ext4_buffered_write_iter', 'ext4_file_write_iter')],
  ['file reads', has('sys_pread64', 'ext4_file_read_iter', 'filemap_read')],
  ['open, unlink, rename, stat', has('sys_openat', 'sys_unlink', 'sys_rename', 'statx', 'sys_newfstatat')],
  ['page faults (elsewhere)', has('exc_page_fault')],
  ['epoll, futex, scheduler', has('epoll', 'sys_futex', '__schedule')],
  ['memcpy (user)', (_c, frames) => frames[0]?.includes('memmove') === true],
  ['malloc, free', (_c, frames) => /malloc|_int_free|cfree|unlink_chunk/.test(frames[0] ?? '')],
  ['other system calls', has('do_syscall_64')],
  ['JS, V8 builtins and runtime', comm => comm === 'WorkerThread' || comm === 'node-MainThread']
]
const THREADS = ['node-MainThread', 'WorkerThread', 'libuv-worker', 'node-V8Worker', 'fio']

/** Samples of `perf script -F comm,ip,sym` output: a header line (the command first), then one indented frame per line, a blank line between samples. */
function parseSamples (text: string): Sample[] {
  const out: Sample[] = []
  let cur: Sample | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur !== undefined) out.push(cur)
      cur = undefined
    } else if (line[0] !== ' ' && line[0] !== '\t') {
      cur = { comm: line.trim().split(/\s+/)[0], frames: [] }
    } else if (cur !== undefined) {
      const parts = line.trim().split(/\s+/)
      cur.frames.push(parts.slice(1).join(' ') || '?')
    }
  }
  if (cur !== undefined) out.push(cur)
  return out
}

const file = process.argv[2]
if (file === undefined) {
  process.stderr.write('usage: perf-layers.ts PERF_SCRIPT.txt (perf script -F comm,ip,sym, recorded with -g)\n')
  process.exit(2)
}
const samples = parseSamples(readFileSync(file, 'utf8'))
if (samples.length === 0) {
  process.stderr.write(`${file}: no samples (perf script -F comm,ip,sym output expected)\n`)
  process.exit(1)
}
const byLayer = new Map<string, Map<string, number>>()
const byThread = new Map<string, number>()
for (const { comm, frames } of samples) {
  byThread.set(comm, (byThread.get(comm) ?? 0) + 1)
  const layer = LAYERS.find(([, rule]) => rule(comm, frames))?.[0] ?? 'other'
  const row = byLayer.get(layer) ?? new Map<string, number>()
  row.set(comm, (row.get(comm) ?? 0) + 1)
  row.set('*', (row.get('*') ?? 0) + 1)
  byLayer.set(layer, row)
}
const pct = (n: number | undefined): string => (100 * (n ?? 0) / samples.length).toFixed(1).padStart(5)
process.stdout.write(`${samples.length} samples; threads: ${[...byThread].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([t, n]) => `${t} ${pct(n).trim()}%`).join(', ')}\n`)
process.stdout.write(`${'% all'.padStart(6)}  ${'layer'.padEnd(42)} ${THREADS.map(t => t.slice(0, 12).padStart(13)).join('')}\n`)
for (const name of [...LAYERS.map(([n]) => n), 'other']) {
  const row = byLayer.get(name)
  if (row === undefined) continue
  process.stdout.write(`${pct(row.get('*'))}%  ${name.padEnd(42)} ${THREADS.map(t => pct(row.get(t)).padStart(13)).join('')}\n`)
}
