// Pins (DESIGN.md §4, §6): a host pins a subtree to keep a full local copy of it for offline
// use: every chunk of every file under it stored here, decodable without any peer.
//
// A pin is replicated metadata: the xattr `darkfs.pin.<peer id>` on the pinned inode, set and
// removed only by that peer (so pins never conflict, and move with their directory). Every host
// therefore knows who pins what: a writer asks pinners(inode) and adds the pinning hosts to the
// push plan of its chunks (network.ts), so new content reaches them along the swarm's
// forwarding chains, not as one upload per pinning host. Each pinning host also catches up by
// itself (refresh): after pin(), after ops change the tree, and when peers come back, it fetches
// whatever part of its pinned subtrees it does not hold yet (manifests and any k fragments).
//
// unpin() removes the pin: the copies stay as ordinary stored blocks and stop being kept up.
import type { CID } from 'multiformats/cid'
import type { ChunkService } from '../data/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import { FsError } from '../errors.ts'
import { forEachLimited } from '../pool.ts'
import { withMethods } from '../wrap.ts'
import { PIN_XATTR_PREFIX, isPinXattr } from '../types.ts'
import type { Content, Tree, InodeId, OpsEventDetail } from '../tree/index.ts'
import type { Volume } from '../index.ts'
import { anySignal } from '../abort.ts'
import { logger, shortCid } from '../log.ts'

const log = logger('keeper:pins')

/** Delay between a tree change and the catch-up it triggers (lets pushed blocks arrive first). */
export const PIN_SETTLE_MS = 1000
/** Delay before a refresh looks again at chunks that were still arriving through a relay. */
export const PIN_ARRIVING_RETRY_MS = 5000
/** Files filled at once by one refresh. */
export const PIN_FETCH_CONCURRENCY = 4
/** Deepest ancestor chain followed when looking for pins above an inode. */
export const MAX_PIN_DEPTH = 4096

type TreeView = Pick<Tree, 'get' | 'entries' | 'children' | 'root'>

/**
 * A store whose delete() spares the blocks `keeps` names: GC, rebalance and repair delete
 * through it, so they never remove a pinned copy.
 */
export function guardStore<S extends { delete: (cid: CID) => Promise<void> }> (store: S, keeps: (cid: CID) => Promise<boolean>): S {
  const methods = { delete: async (cid: CID): Promise<void> => { if (!(await keeps(cid))) await store.delete(cid) } } as Partial<S>
  return withMethods(store, methods)
}

/** The peers pinning an inode: pins on the inode itself or on any directory above it. */
export function pinnersOf (tree: TreeView, inode: InodeId): string[] {
  const out = new Set<string>()
  const seen = new Set<InodeId>()
  const stack: Array<{ id: InodeId, depth: number }> = [{ id: inode, depth: 0 }]
  while (stack.length > 0) {
    const { id, depth } = stack.pop()!
    if (seen.has(id) || depth > MAX_PIN_DEPTH) continue
    seen.add(id)
    const node = tree.get(id)
    if (node === undefined) continue
    for (const name of node.xattrs.keys()) if (isPinXattr(name)) out.add(name.slice(PIN_XATTR_PREFIX.length))
    if (id === tree.root) continue
    for (const e of tree.entries(id)) stack.push({ id: e.parent, depth: depth + 1 })
  }
  return [...out].sort()
}

/** Every file inode under the subtrees pinned by `peer` (each once). */
export function pinnedFiles (tree: TreeView, peer: string): InodeId[] {
  const key = PIN_XATTR_PREFIX + peer
  const files: InodeId[] = []
  const seen = new Set<InodeId>()
  const stack: Array<{ id: InodeId, pinned: boolean }> = [{ id: tree.root, pinned: false }]
  while (stack.length > 0) {
    const { id, pinned: above } = stack.pop()!
    if (seen.has(id) && !above) continue
    const node = tree.get(id)
    if (node === undefined) continue
    const pinned = above || node.xattrs.has(key)
    if (seen.has(id)) continue
    seen.add(id)
    if (node.kind === 'dir') {
      for (const e of tree.children(id)) stack.push({ id: e.inode, pinned })
    } else if (pinned && node.kind === 'file') {
      files.push(id)
    }
  }
  return files
}

export interface PinStats {
  /** Files under the pinned subtrees. */
  files: number
  /** Distinct chunks of those files. */
  chunks: number
  /** Chunks fetched by this call. */
  fetched: number
  /** Chunks (or manifests) that could not be fetched: no reachable peer holds them yet. */
  missing: number
  /** Chunks not fetched because they are arriving here through a relay now (looked at again later). */
  arriving: number
}

export interface PinsComponents {
  peerId: string
  volume: Pick<Volume, 'stat' | 'setxattr' | 'removexattr'>
  tree: TreeView & Pick<Tree, 'byIno' | 'contents' | 'size' | 'addEventListener' | 'removeEventListener'>
  chunks: Pick<ChunkService, 'readManifest' | 'hasLocally'>
  /** Where fetched fragments are kept. */
  store: { has: (cid: CID) => Promise<boolean>, putMany: (blocks: Array<{ cid: CID, bytes: Uint8Array }>) => Promise<void> }
  /** Fetch `need` of the given fragments from peers (network.ts). */
  fetch: (cids: CID[], need: number, opts?: AbortOptions) => Promise<Map<string, Uint8Array>>
  /** Whether a chunk's fragments are arriving here now (this host relays it: forward.ts). */
  arriving?: (chunk: CID) => boolean
}

/**
 * A pin whose every chunk is stored here now: when `pin(path)` finds nothing left to fetch, or
 * when a later catch-up fetched what was missing then. `files` and `chunks` count everything
 * under this host's pins (one refresh fills them all).
 */
export interface PinComplete { path: string, files: number, chunks: number }

/** Events: 'complete' (PinComplete). */
export class Pins extends EventTarget {
  private readonly c: PinsComponents
  /** Paths pinned here whose pin() left chunks to fetch: complete once a refresh fetched them. */
  private readonly unfilled = new Set<string>()
  private timer?: ReturnType<typeof setTimeout>
  private running?: Promise<PinStats>
  private started = false
  private readonly controller = new AbortController()
  /** Whether this host pins anything (recomputed when one of its pin xattrs changes). */
  private any = false
  /** Blocks (manifests, fragments) under this host's pins, as of tree size `keptAt`. */
  private kept = new Set<string>()
  private keptAt = -1
  /** The tree's 'ops' event: a change of this host's pin xattrs recounts its pins. */
  private readonly onOps = (e: Event): void => {
    const { ops } = (e as CustomEvent<OpsEventDetail>).detail
    const mine = PIN_XATTR_PREFIX + this.c.peerId
    if (ops.some(({ body }) => (body.type === 'setxattr' || body.type === 'removexattr') && body.name === mine)) {
      this.any = this.pinnedRoots().length > 0
    }
    if (this.any) this.kick()
  }

  constructor (components: PinsComponents) {
    super()
    this.c = components
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.c.tree.addEventListener('ops', this.onOps)
    this.any = this.pinnedRoots().length > 0
    if (this.any) this.kick(0)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.c.tree.removeEventListener('ops', this.onOps)
    clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort()
    await this.running?.catch(() => {}) // ignored: the run's own caller gets its error (kick() logs it); stop only waits for its end
  }

  /** The peers pinning an inode (directly or through a directory above it). */
  pinners (inode: InodeId): string[] {
    return pinnersOf(this.c.tree, inode)
  }

  /** Pin PATH here and fetch everything under it that is not stored here yet. */
  async pin (path: string, opts: AbortOptions = {}): Promise<PinStats> {
    await this.c.volume.setxattr(path, PIN_XATTR_PREFIX + this.c.peerId, new TextEncoder().encode('1'))
    this.unfilled.add(path)
    return await this.refresh(opts)
  }

  /** Remove this host's pin of PATH (ENODATA-style FsError if it is not pinned here). */
  async unpin (path: string): Promise<void> {
    try {
      await this.c.volume.removexattr(path, PIN_XATTR_PREFIX + this.c.peerId)
      this.unfilled.delete(path)
    } catch (err: any) {
      if (err?.code === 'ENODATA') throw new FsError('EINVAL', 'unpin', path, 'not pinned on this host')
      throw err
    }
  }

  /**
   * Whether a block (manifest or fragment) belongs to a file under this host's pins: such a
   * block is never deleted here (see guardStore).
   */
  async keeps (cid: CID): Promise<boolean> {
    if (!this.any) return false
    if (this.keptAt !== this.c.tree.size) {
      const at = this.c.tree.size
      const kept = new Set<string>()
      for (const id of pinnedFiles(this.c.tree, this.c.peerId)) {
        // the file's base, a fold standing in for it, and its appends
        for (const content of this.c.tree.contents(id)) {
          if (!('manifest' in content)) continue
          kept.add(content.manifest.toString())
          const manifest = await this.c.chunks.readManifest(content.manifest).catch((err: Error) => {
            // the manifest itself stays kept; its fragments are known again once it can be read
            log.error('pinned file %s: manifest %s unreadable, its fragments are not spared: %s', id, shortCid(content.manifest), err.message)
            return undefined
          })
          for (const ref of manifest?.chunks ?? []) for (const f of ref.fragments) kept.add(f.toString())
        }
      }
      this.kept = kept
      this.keptAt = at
    }
    return this.kept.has(cid.toString())
  }

  /** The inodes this host pins directly. */
  pinnedRoots (): InodeId[] {
    const key = PIN_XATTR_PREFIX + this.c.peerId
    const out: InodeId[] = []
    const seen = new Set<InodeId>()
    const stack: InodeId[] = [this.c.tree.root]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (seen.has(id)) continue
      seen.add(id)
      const node = this.c.tree.get(id)
      if (node === undefined) continue
      if (node.xattrs.has(key)) out.push(id)
      if (node.kind === 'dir') for (const e of this.c.tree.children(id)) stack.push(e.inode)
    }
    return out
  }

  /**
   * Every pinned path in the tree (by any host), with the hosts pinning it there; a path pinned
   * through a directory above it is not repeated.
   */
  list (): Array<{ path: string, pinners: string[], here: boolean }> {
    const out: Array<{ path: string, pinners: string[], here: boolean }> = []
    const seen = new Set<InodeId>()
    const stack: Array<{ id: InodeId, path: string, depth: number }> = [{ id: this.c.tree.root, path: '/', depth: 0 }]
    while (stack.length > 0) {
      const { id, path, depth } = stack.pop()!
      if (seen.has(id) || depth > MAX_PIN_DEPTH) continue
      seen.add(id)
      const node = this.c.tree.get(id)
      if (node === undefined) continue
      const pinners = [...node.xattrs.keys()].filter(isPinXattr).map(name => name.slice(PIN_XATTR_PREFIX.length)).sort()
      if (pinners.length > 0) out.push({ path, pinners, here: pinners.includes(this.c.peerId) })
      if (node.kind === 'dir') for (const e of this.c.tree.children(id)) stack.push({ id: e.inode, path: (path === '/' ? '' : path) + '/' + e.name, depth: depth + 1 })
    }
    return out.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  }

  /** Schedule a catch-up after delayMs (one at a time): after tree changes and reconnects. */
  kick (delayMs = PIN_SETTLE_MS): void {
    if (!this.started || !this.any || this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.refresh().catch((err: Error) => {
        if (this.controller.signal.aborted) log('pin catch-up stopped: %s', err.message)
        else log.error('pin catch-up failed: %s', err.message)
      })
    }, delayMs)
  }

  /**
   * Fetch every chunk under this host's pins that is not stored here (any k fragments, verified
   * by the swarm, kept in the store). One refresh runs at a time; a call during one waits for
   * it, then runs its own.
   */
  async refresh (opts: AbortOptions = {}): Promise<PinStats> {
    // ignored: the earlier run's error is its own caller's; this call only waits for it to end
    while (this.running !== undefined) await this.running.catch(() => {})
    const run = this.fill(opts).finally(() => { this.running = undefined })
    this.running = run
    return await run
  }

  private async fill (opts: AbortOptions): Promise<PinStats> {
    const signal = anySignal([opts.signal, this.controller.signal])
    // pins made before this refresh looked at the tree (a pin() during it waits for the next)
    const waiting = [...this.unfilled]
    const files = pinnedFiles(this.c.tree, this.c.peerId)
    const stats: PinStats = { files: files.length, chunks: 0, fetched: 0, missing: 0, arriving: 0 }
    const seen = new Set<string>()
    await forEachLimited(files, PIN_FETCH_CONCURRENCY, async id => {
      await this.fillFile(id, stats, seen, signal)
    }, { signal })
    if (stats.arriving > 0) this.kick(PIN_ARRIVING_RETRY_MS)
    if (stats.missing === 0 && stats.arriving === 0) {
      for (const path of waiting) {
        if (!this.unfilled.delete(path)) continue
        this.dispatchEvent(new CustomEvent<PinComplete>('complete', { detail: { path, files: stats.files, chunks: stats.chunks } }))
      }
    }
    return stats
  }

  private async fillFile (id: InodeId, stats: PinStats, seen: Set<string>, signal: AbortSignal): Promise<void> {
    // the file's base, a fold standing in for it, and its appends
    for (const content of this.c.tree.contents(id)) await this.fillContent(id, content, stats, seen, signal)
  }

  private async fillContent (id: InodeId, content: Content, stats: PinStats, seen: Set<string>, signal: AbortSignal): Promise<void> {
    if (!('manifest' in content)) return
    let manifest
    try {
      manifest = await this.c.chunks.readManifest(content.manifest, { signal, keep: true })
    } catch (err: any) {
      signal.throwIfAborted()
      // counted (PinStats.missing) and tried again at the next catch-up
      log('pinned file %s: manifest %s not fetched: %s', id, shortCid(content.manifest), err?.message)
      stats.missing++
      return
    }
    for (const ref of manifest.chunks) {
      if (ref.cid === null || seen.has(ref.cid.toString())) continue
      seen.add(ref.cid.toString())
      stats.chunks++
      if (await this.c.chunks.hasLocally(ref)) continue
      // this host relays the chunk: its data fragments land here when the relay stores them
      if (this.c.arriving?.(ref.cid) === true) {
        stats.arriving++
        continue
      }
      const want: CID[] = []
      let have = 0
      const distinct = new Map(ref.fragments.map(f => [f.toString(), f]))
      for (const f of distinct.values()) {
        if (await this.c.store.has(f)) have += ref.k === 1 ? 1 : ref.fragments.filter(x => x.equals(f)).length
        else want.push(f)
      }
      try {
        const got = await this.c.fetch(want, Math.max(1, ref.k - have), { signal })
        await this.c.store.putMany([...got].map(([key, bytes]) => ({ cid: distinct.get(key)!, bytes })))
        stats.fetched++
      } catch (err: any) {
        signal.throwIfAborted()
        // counted (PinStats.missing) and tried again at the next catch-up
        log('pinned file %s: chunk %s not fetched (%d of %d fragments wanted): %s', id, shortCid(ref.cid), want.length, ref.fragments.length, err?.message)
        stats.missing++
      }
    }
  }
}
