// Scrub (DESIGN.md §3): re-hash every stored block in the background. Store.get() verifies
// each read against its CID and moves a mismatching block aside (quarantine), so a corrupt
// fragment simply stops being held here; the scrub reports it and asks for a repair pass,
// which rebuilds it from the other fragments.
import type { CID } from 'multiformats/cid'
import { tokenBucket } from '../../swarm/index.ts'
import type { RateLimiter } from '../../swarm/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import { CorruptBlockError } from '../errors.ts'
import type { Store } from '../data/index.ts'
import { logger } from '../log.ts'
import { anySignal } from '../abort.ts'

const log = logger('keeper:scrub')

/** Default time between scrubs: 1 day. */
export const DEFAULT_SCRUB_INTERVAL_MS = 24 * 3600_000
/** Default disk read rate of a scrub: 16 MiB/s, so it never competes with the mount. */
export const DEFAULT_SCRUB_BYTES_PER_SECOND = 16 * 1024 * 1024

export interface ScrubInit {
  /** Time between background scrubs (default DEFAULT_SCRUB_INTERVAL_MS; 0 = none in the background). */
  intervalMs?: number
  bytesPerSecond?: number
}

export interface ScrubComponents {
  store: Pick<Store, 'cids' | 'get'>
  /** Called once after a scrub that found corrupt blocks (e.g. start a repair pass). */
  onCorrupt?: (cids: CID[]) => void
}

export interface ScrubReport { checked: number, bytes: number, corrupt: string[] }

export class Scrubber {
  private readonly c: ScrubComponents
  private readonly intervalMs: number
  private readonly limiter: RateLimiter
  private timer?: ReturnType<typeof setTimeout>
  private running?: Promise<ScrubReport>
  private shutdown = new AbortController()
  private started = false

  constructor (components: ScrubComponents, init: ScrubInit = {}) {
    this.c = components
    this.intervalMs = init.intervalMs ?? DEFAULT_SCRUB_INTERVAL_MS
    this.limiter = tokenBucket({ rate: init.bytesPerSecond ?? DEFAULT_SCRUB_BYTES_PER_SECOND })
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.shutdown = new AbortController()
    this.arm()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    clearTimeout(this.timer)
    this.shutdown.abort(new Error('scrub stopped'))
    // ignored: the scrub was just aborted; its failure goes to scrub()'s own caller
    await this.running?.catch(() => {})
  }

  private arm (): void {
    if (!this.started || this.intervalMs <= 0) return
    this.timer = setTimeout(() => {
      this.scrub().then(r => {
        if (r.corrupt.length > 0) log.error('scrub found %d corrupt block(s) of %d: %s', r.corrupt.length, r.checked, r.corrupt.join(', '))
      }, (err: Error) => {
        if (this.started) log.error('scrub failed: %s', err.message)
      }).finally(() => { this.arm() })
    }, this.intervalMs)
    this.timer.unref?.()
  }

  /** Re-hash every stored block now (one scrub at a time: a second call joins the first). */
  async scrub (opts: AbortOptions = {}): Promise<ScrubReport> {
    if (this.running !== undefined) return await this.running
    const signal = anySignal([opts.signal, this.shutdown.signal])
    this.running = this.run(signal)
    try { return await this.running } finally { this.running = undefined }
  }

  private async run (signal: AbortSignal): Promise<ScrubReport> {
    const report: ScrubReport = { checked: 0, bytes: 0, corrupt: [] }
    const corrupt: CID[] = []
    for await (const cid of this.c.store.cids()) {
      signal.throwIfAborted()
      try {
        const bytes = await this.c.store.get(cid)
        report.bytes += bytes.byteLength
        await this.limiter.take(bytes.byteLength, { signal })
      } catch (err: any) {
        if (err instanceof CorruptBlockError) { corrupt.push(cid); report.corrupt.push(cid.toString()) } else if (err?.code !== 'ENOENT') throw err
      }
      report.checked++
    }
    if (corrupt.length > 0) this.c.onCorrupt?.(corrupt)
    return report
  }
}
