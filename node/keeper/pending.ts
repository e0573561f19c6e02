// The chunks written here whose placement has not finished (DESIGN.md §5, §6): kept by the
// network, read by the swarm. It is built before both, so the swarm can ask it without knowing
// the network: on a thin uplink (placement through relays), a background want (a keeper's
// repair, a pinning host's catch-up) for a fragment of a pending chunk is refused here, since
// the relays deliver it to those hosts; serving their own fetches meanwhile would upload it
// from here once more each. Reads are always served. A chunk whose placement finished is told
// as a 'placed' event (the health book records who acknowledged it: status.ts).
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../data/index.ts'

/**
 * Which encoding of its chunk a ref is (k, fragment count, last fragment): the same bytes coded
 * with another k, m or code (written again after the network's size changed k: a copied file,
 * a chunk of zeros) have the same chunk CID and other fragments, and a placement of one says
 * nothing of the other's.
 */
export function encodingOf (ref: ChunkRef): string {
  const n = ref.fragments.length
  return `${ref.k}/${n}/${n === 0 ? '' : ref.fragments[n - 1].toString()}`
}

/** One coding of a chunk (its CID and encodingOf): what a placement is of. */
export function codingOf (ref: ChunkRef): string {
  return `${ref.cid!.toString()} ${encodingOf(ref)}`
}

const NONE: ReadonlySet<string> = new Set()

export interface PendingInit {
  /** Whether this host places its chunks through relays (network.ts throughRelays): only then are background wants withheld. */
  relayed?: boolean
}

export interface PendingEvents {
  /** A chunk's placement finished (detail: its ref). */
  placed: CustomEvent<ChunkRef>
}

export class PendingPlacements extends EventTarget {
  private readonly relayed: boolean
  /** coding (codingOf) -> its ref: two codings of one chunk are pending each on its own. */
  private readonly chunks = new Map<string, ChunkRef>()
  /** chunk CID -> its pending codings (encodingOf). */
  private readonly codings = new Map<string, Set<string>>()
  /**
   * Pending coding (codingOf) -> the file (inode) it was written for, to find the hosts pinning
   * it: two files' chunks of the same bytes coded apart (another k) are each their own file's.
   */
  private readonly inodes = new Map<string, string>()
  /** Fragment -> how many pending chunks have it (fragments are content-addressed: equal shards). */
  private readonly fragments = new Map<string, number>()

  constructor (init: PendingInit = {}) {
    super()
    this.relayed = init.relayed ?? false
  }

  get size (): number {
    return this.chunks.size
  }

  /** Whether a coding of the chunk (its CID) is pending. */
  has (chunk: string): boolean {
    return this.codings.has(chunk)
  }

  /** The pending codings (encodingOf) of a chunk (its CID): none when it has none. */
  encodings (chunk: string): ReadonlySet<string> {
    return this.codings.get(chunk) ?? NONE
  }

  /** Whether this coding of its chunk is pending. */
  hasCoding (ref: ChunkRef): boolean {
    return this.chunks.has(codingOf(ref))
  }

  values (): IterableIterator<ChunkRef> {
    return this.chunks.values()
  }

  /** The file a pending coding of a chunk was written for, when known. */
  inode (ref: ChunkRef): string | undefined {
    return this.inodes.get(codingOf(ref))
  }

  /** A chunk starts (or restarts) placement; `inode`: the file it belongs to. */
  add (ref: ChunkRef, inode?: string): void {
    const key = ref.cid!.toString()
    const coding = codingOf(ref)
    if (!this.chunks.has(coding)) {
      this.count(ref, 1)
      const encodings = this.codings.get(key) ?? new Set<string>()
      encodings.add(encodingOf(ref))
      this.codings.set(key, encodings)
    }
    this.chunks.set(coding, ref)
    if (inode !== undefined) this.inodes.set(coding, inode)
  }

  /** A chunk's placement finished. */
  delete (ref: ChunkRef): void {
    const key = ref.cid!.toString()
    const coding = codingOf(ref)
    const was = this.chunks.delete(coding)
    if (!was) return
    this.inodes.delete(coding)
    this.count(ref, -1)
    const encodings = this.codings.get(key)
    encodings?.delete(encodingOf(ref))
    if (encodings?.size === 0) this.codings.delete(key)
    this.dispatchEvent(new CustomEvent('placed', { detail: ref }))
  }

  /**
   * A placed chunk's record changed (a keeper refused to renew its promise, network.renew()):
   * told as a 'placed' event, so the record's listeners (its keeper's placement notice, the
   * health book) hear who holds what now. Not a placement: nothing pending changes.
   */
  recorded (ref: ChunkRef): void {
    this.dispatchEvent(new CustomEvent('placed', { detail: ref }))
  }

  /** Whether another pending chunk than `ref` has fragment `f` (it is still to be sent from here). */
  neededByOther (ref: ChunkRef, f: CID): boolean {
    for (const p of this.chunks.values()) if (p !== ref && p.fragments.some(x => x.equals(f))) return true
    return false
  }

  /** Whether a background want for this fragment is refused here (see the top of this file). */
  withholdsBackground (fragment: CID): boolean {
    return this.relayed && this.fragments.has(fragment.toString())
  }

  private count (ref: ChunkRef, delta: 1 | -1): void {
    for (const f of new Set(ref.fragments.map(String))) {
      const n = (this.fragments.get(f) ?? 0) + delta
      if (n > 0) this.fragments.set(f, n)
      else this.fragments.delete(f)
    }
  }
}
