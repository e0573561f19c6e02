// One retained() walk for many release requests (release.ts): a holder of many writers' fragments
// is asked once per give-up and per rewritten chunk, and each answer walked every live file and
// read every retained manifest (730-1,190 ms at 5,000 files, serially). Two things make it cheap
// without keeping less:
//  - callers at one tree state share a walk in flight (started for the first of them);
//  - a finished walk answers later callers while the tree has taken no op since it began. What
//    that relies on: the tree changes only by ops (Tree.integrate adds an op to the DAG and applies
//    it in one synchronous step, and the DAG never loses one), so Tree.size read at the walk's
//    start (retained() lists the contents before its first await) names the state it listed; a
//    version committed after it is one more op, and the next caller walks again. Time alone only
//    moves the retention horizon on, so a result reused later names more versions (old ones since
//    expired), never fewer. A walk with unreadable manifests is not reused (the next may read them).
// The manifests themselves come from the keeper-wide ManifestRefs (retained.ts).
import type { AbortOptions } from '@libp2p/interface'
import type { Volume } from '../index.ts'
import { raceSignal } from '../abort.ts'
import { retained } from './retained.ts'
import type { Retained } from './retained.ts'

/** How long a finished walk is kept for callers at the same tree state after its last use. */
export const LAST_KEPT_MS = 60_000

interface Flight {
  /** Tree.size when the walk began. */
  size: number
  promise: Promise<Retained>
  controller: AbortController
  /** Callers waiting on it: when the last of them gives up, the walk is aborted. */
  waiting: number
}

export class RetainedWalks {
  private readonly volume: Volume
  private readonly retentionMs: number
  private readonly walk: typeof retained
  private last?: { size: number, result: Retained }
  /** Drops `last` once no caller has used it for LAST_KEPT_MS (a whole walk's result and its sets, held for nothing: review32g). */
  private lastTimer?: ReturnType<typeof setTimeout>
  private flight?: Flight
  /** Walks begun (tests, logs). */
  walks = 0

  constructor (volume: Volume, retentionMs: number, walk: typeof retained = retained) {
    this.volume = volume
    this.retentionMs = retentionMs
    this.walk = walk
  }

  /** What the tree retains now: every version committed before this call is in it. Treat the result as read-only. */
  async get (opts: AbortOptions = {}): Promise<Retained> {
    opts.signal?.throwIfAborted()
    const size = this.volume.tree.size
    if (this.last?.size === size) {
      this.forgetLater()
      return this.last.result
    }
    let f = this.flight
    // (one every caller gave up on is not joined: it ends aborted)
    if (f === undefined || f.size !== size || f.controller.signal.aborted) f = this.begin(size)
    f.waiting++
    try {
      return await raceSignal(f.promise, opts.signal)
    } finally {
      if (--f.waiting === 0 && opts.signal?.aborted === true) f.controller.abort(opts.signal.reason)
    }
  }

  private forgetLater (): void {
    clearTimeout(this.lastTimer)
    this.lastTimer = setTimeout(() => { this.last = undefined }, LAST_KEPT_MS)
    // a result kept does not keep the process alive
    this.lastTimer.unref()
  }

  private begin (size: number): Flight {
    const controller = new AbortController()
    this.walks++
    // retained() lists the tree's contents synchronously, before its first await: at `size`
    const promise = this.walk(this.volume, this.retentionMs, { signal: controller.signal })
    const f: Flight = { size, promise, controller, waiting: 0 }
    this.flight = f
    const settled = (r?: Retained): void => {
      if (r !== undefined && r.unreadable === 0 && (this.last === undefined || this.last.size <= size)) {
        this.last = { size, result: r }
        this.forgetLater()
      }
      if (this.flight === f) this.flight = undefined
    }
    // ignored: every caller waiting on the walk hears its failure (get()), and none is kept
    promise.then(settled, () => { settled() })
    return f
  }
}
