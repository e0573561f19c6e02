// A counting semaphore: upload slots, pushes in flight per peer.
import type { AbortOptions } from '@libp2p/interface'

export interface Slots {
  /** Wait for a free slot; call the returned function exactly once to give it back. */
  acquire (opts?: AbortOptions): Promise<() => void>
  readonly busy: number
  readonly waiting: number
}

export function slots (size: number): Slots {
  if (!(size >= 1)) throw new RangeError('a slot pool needs at least one slot')
  let busy = 0
  const waiters: Array<() => void> = []

  function release (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = waiters.shift()
      if (next !== undefined) next()
      else busy--
    }
  }

  return {
    get busy () { return busy },
    get waiting () { return waiters.length },
    async acquire (opts) {
      opts?.signal?.throwIfAborted()
      if (busy < size) { busy++; return release() }
      await new Promise<void>((resolve, reject) => {
        const signal = opts?.signal
        const wake = (): void => { signal?.removeEventListener('abort', onAbort); resolve() }
        const onAbort = (): void => {
          const i = waiters.indexOf(wake)
          if (i >= 0) waiters.splice(i, 1)
          reject(signal?.reason)
        }
        waiters.push(wake)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
      return release()
    }
  }
}
