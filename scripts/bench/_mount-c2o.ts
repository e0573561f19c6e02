// Close-to-open latency between two mounts of different hosts, run in a child process (the
// process serving the mounts must not block on them). Usage: node _mount-c2o.ts DIR_A DIR_B ROUNDS
// Each round writes a new version of one file on A (open, write, close), then reads it on B
// until the new bytes show. Prints one JSON object: median and max milliseconds.
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const [a, b, roundsArg] = process.argv.slice(2)
const rounds = Number(roundsArg)
/** Pause between reads on B while the version has not arrived. */
const POLL_MS = 5

const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }
const times: number[] = []
for (let r = 0; r < rounds; r++) {
  const text = `version ${r} ${process.hrtime.bigint()}\n`
  const t0 = performance.now()
  writeFileSync(join(a, 'c2o.txt'), text)
  for (;;) {
    let seen = ''
    try { seen = readFileSync(join(b, 'c2o.txt'), 'utf8') } catch {}
    if (seen === text) break
    sleep(POLL_MS)
  }
  times.push(performance.now() - t0)
}
times.sort((x, y) => x - y)
process.stdout.write(JSON.stringify({ 'close-to-open.median.ms': times[Math.floor(times.length / 2)], 'close-to-open.max.ms': times[times.length - 1] }) + '\n')
