// node/net/heap.ts: a process running a darkfs host has V8 count Buffer memory in its heap limit, so
// short-lived Buffers alone (what a host moving data allocates: chunks, fragments, encrypted
// frames) no longer force a full mark-compact every 64 MiB. Each case runs in a process of its
// own (V8 flags are process-wide): the same churn of 2 GiB of 256 KiB Buffers over a retained heap,
// counting major collections (perf_hooks 'gc' entries), once after loading the host module and
// once without it (the control: V8's default rule collects many times for it). How many times V8's
// default collects depends on how fast its concurrent marking threads run beside the churn: on a
// loaded machine one run in several counts as few as 3 (seen in CI and here with the cores busy),
// so the control is run up to 3 times and its largest count is taken; the host mode counted 0-1 in
// every run, loaded or not.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const HOST_MODULE = pathToFileURL(join(import.meta.dirname, '../../node/net/host.ts')).href

const CHURN = `
const [mode, hostUrl] = process.argv.slice(1)
if (mode === 'host') await import(hostUrl)
const { PerformanceObserver, constants } = await import('node:perf_hooks')
let major = 0
const count = entries => { for (const e of entries) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++ }
const obs = new PerformanceObserver(list => { count(list.getEntries()) })
obs.observe({ entryTypes: ['gc'] })
globalThis.retained = Array.from({ length: 200000 }, (_, i) => ({ i, s: 'k' + i, a: [i] }))
// 2 GiB in 256 KiB Buffers, the last 32 MiB of them alive (they outlive young collections, as a
// host's chunks and fragments in flight do)
const live = []
for (let i = 0; i < 8192; i++) {
  const b = Buffer.allocUnsafeSlow(256 * 1024)
  b[i % b.length] = i
  live.push(b)
  if (live.length > 128) live.shift()
}
// gc entries are delivered from the event loop: let it run, then take what is still queued
for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
count(obs.takeRecords())
obs.disconnect()
process.stdout.write(JSON.stringify({ major, retained: globalThis.retained.length, live: live.length }))
`

async function majorCollections (mode: 'host' | 'plain'): Promise<number> {
  const env = { ...process.env }
  delete env.DARKFS_V8_EXTERNAL_LIMIT
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHURN, mode, HOST_MODULE], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  assert.equal(code, 0, `the ${mode} child failed: ${err}`)
  const got = JSON.parse(out) as { major: number, retained: number, live: number }
  assert.deepEqual([got.retained, got.live], [200000, 128], 'the churn ran whole')
  return got.major
}

describe('heap: Buffer memory counted in V8\'s heap limit', function () {
  this.timeout(120_000)

  it('after the host module loads, 2 GiB of short-lived Buffers cost at most 3 major collections; without it (V8\'s default) at least 5', async () => {
    let plain = 0
    for (let run = 0; run < 3 && plain < 5; run++) plain = Math.max(plain, await majorCollections('plain'))
    const host = await majorCollections('host')
    assert.ok(plain >= 5, `the control: V8's default rule collected ${plain} times`)
    assert.ok(host <= 3, `with the host module loaded: ${host} major collections (control: ${plain})`)
  })
})
