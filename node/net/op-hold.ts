// An fsync's last step on a network (DESIGN.md §5): one peer holds this host's newest op, and
// with it every op below it, before the fsync returns, so a host lost right after an fsync
// loses no op of it. Commits come in bursts (a `tar x`, SQLite's journal syncs), and holding
// op X holds every op before it (this host's ops form a chain, and a peer applies an op only
// with its parents), so one ask runs at a time, for the newest op committed: every commit
// waiting when it is done is covered by it.
//
// The peers asked are the connected ones that announce the 'hold/1' feature (hosts of older
// versions do not know the request), the peer that held the last ask first, the rest in random
// order. That peer holds the chain below the new op already, so it applies the op at once; a
// peer picked at random lacked the ops of the fsyncs before (gossip gathers a host's ops for
// 100 ms) and fetched them from the asker first, a second call in the fsync's wait. Each host
// favours its own peer, so the asks of a network still spread. None of
// them (alone, offline, a network of older hosts) or none that holds it: the op is durable here
// only, as while offline, and that is logged; the fsync is not failed for it. The wait is bounded
// by the caller (the Volume's SYNC_PLACE_WAIT_MS, like a placement's). Each new op asked for is
// told to the source first (holding: Sync keeps it off gossip, the ask carries it and the holder
// publishes it, net/sync.ts "Relay"), and one no peer was asked for too (unheld).
import type { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { logger } from '../log.ts'

const log = logger('net:op-hold')

export interface OpHoldSources {
  /** Ask `peers` in turn to hold op `cid` (its block `op` when given); the peer that does, or undefined (Sync.hold). */
  hold: (cid: CID, peers: readonly string[], opts?: AbortOptions & { op?: Uint8Array }) => Promise<string | undefined>
  /** The peers that may be asked now (connected, announcing the feature). */
  peers: () => string[]
  /** Op `cid` will be asked for: its ask carries it (Sync.holding: not gossiped from here meanwhile). */
  holding?: (cid: CID) => void
  /** No peer was asked for op `cid` (none to ask): it goes out as usual (Sync.unheld). */
  unheld?: (cid: CID) => void
}

export class OpHold {
  private readonly src: OpHoldSources
  private readonly signal: AbortSignal | undefined
  /** The newest op asked for, its number, and its block when the asker gave it. */
  private newest: { cid: CID, n: number, op?: Uint8Array } | undefined
  private count = 0
  /** Asks whose op a finished ask covered: numbers up to this. */
  private covered = 0
  private readonly waiting: Array<{ n: number, resolve: () => void }> = []
  private running = false
  /** The peer that held the last op asked for: asked first next time (it holds the chain below). */
  private last: string | undefined

  constructor (src: OpHoldSources, opts: AbortOptions = {}) {
    this.src = src
    this.signal = opts.signal
  }

  /**
   * Resolves once a peer held op `cid` (this host's newest), or an ask for it found none. `op`:
   * its block, for an op not applied here yet (an fsync asks while its op's log write syncs).
   */
  async held (cid: CID, op?: Uint8Array): Promise<void> {
    // the same op asked again (a directory's fsync after its file's): the ask for it covers both
    const same = this.newest !== undefined && this.newest.cid.equals(cid)
    const n = same ? (this.newest as { n: number }).n : ++this.count
    if (!same) {
      this.newest = op === undefined ? { cid, n } : { cid, n, op }
      this.src.holding?.(cid)
    }
    if (this.covered >= n) return
    const done = new Promise<void>(resolve => { this.waiting.push({ n, resolve }) })
    void this.run()
    await done
  }

  private async run (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      while (this.newest !== undefined && this.covered < this.newest.n) {
        const { cid, n, op } = this.newest
        const peers = this.signal?.aborted === true ? [] : firstly(shuffle(this.src.peers()), this.last)
        if (peers.length > 0) {
          const who = await this.src.hold(cid, peers, op === undefined ? { signal: this.signal } : { signal: this.signal, op }).catch((err: Error) => {
            log.error('asking peers to hold op %s: %s', cid, err.message)
            return undefined
          })
          if (who === undefined) log('no peer of %d held op %s: it is durable on this host only', peers.length, cid)
          this.last = who
        } else {
          this.src.unheld?.(cid)
        }
        this.covered = n
        for (let i = this.waiting.length - 1; i >= 0; i--) {
          if (this.waiting[i].n <= n) this.waiting.splice(i, 1)[0].resolve()
        }
      }
    } finally {
      this.running = false
    }
  }
}

/** `list` with `first` moved to its head when it is in it. */
function firstly (list: string[], first: string | undefined): string[] {
  const i = first === undefined ? -1 : list.indexOf(first)
  if (i > 0) {
    list.splice(i, 1)
    list.unshift(first as string)
  }
  return list
}

function shuffle<T> (list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const x = list[i]
    list[i] = list[j]
    list[j] = x
  }
  return list
}
