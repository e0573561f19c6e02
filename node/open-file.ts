// The write path of one inode while it is open on this host: every handle of the inode shares
// one OpenFile, so a read through any handle sees writes made through any other at once, as
// POSIX requires. Writes go into per-chunk buffers; full chunks are spilled to the store when
// the buffered bytes pass a bound; commit() turns the state into a new version (inline bytes
// or a manifest) and appends one `write` op. Until commit, the tree keeps the old version:
// a crash mid-write leaves the old version or the new one, never a torn file.
import type { CID } from 'multiformats/cid'
import { CHUNK_SIZE, INLINE_MAX, holeChunk } from './chunks.ts'
import type { ChunkRef, Manifest } from './chunks.ts'
import type { ChunkService } from './blocks.ts'
import type { Content } from './tree/index.ts'
import { nowNs } from './clock.ts'

/** Buffered (not yet stored) bytes per open inode before full chunks are spilled: 32 MiB. */
export const OPEN_FILE_BUFFER_BYTES = 32 << 20

export interface Committed { content: Content | null, size: number, refs: ChunkRef[] }

export class OpenFile {
  readonly inode: string
  private readonly chunks: ChunkService
  private readonly path: () => string
  /** The committed version this state builds on. */
  private base: { content: Content | null, size: number }
  private manifest?: Manifest
  size: number
  /** Chunk index -> the chunk's bytes, modified here and not yet stored. */
  private readonly dirty = new Map<number, Uint8Array>()
  /** Chunk index -> a chunk stored during this open (spilled), not yet committed. */
  private readonly stored = new Map<number, ChunkRef>()
  private dirtyBytes = 0
  /** Set when anything changed since the last commit. */
  changed = false
  mtime?: bigint
  handles = 0
  private queue: Promise<unknown> = Promise.resolve()

  constructor (inode: string, base: { content: Content | null, size: number }, chunks: ChunkService, path: () => string) {
    this.inode = inode
    this.base = base
    this.size = base.size
    this.chunks = chunks
    this.path = path
  }

  /** Serialise mutations (writes, truncates, commits) on this inode. */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }

  private async loadManifest (): Promise<Manifest | undefined> {
    const c = this.base.content
    if (c === null || !('manifest' in c)) return undefined
    this.manifest ??= await this.chunks.readManifest(c.manifest, { path: this.path() })
    return this.manifest
  }

  /** The current bytes of chunk `i` (length = its size in the current file), for read or modify. */
  private async chunkBytes (i: number): Promise<Uint8Array> {
    const d = this.dirty.get(i)
    if (d !== undefined) return d
    const start = i * CHUNK_SIZE
    const len = Math.max(0, Math.min(CHUNK_SIZE, this.size - start))
    const out = new Uint8Array(len)
    const s = this.stored.get(i)
    let src: Uint8Array | undefined
    if (s !== undefined) {
      src = await this.chunks.readChunk(s, { path: this.path() })
    } else if (start < this.base.size) {
      const c = this.base.content
      if (c !== null && 'inline' in c) {
        src = c.inline.subarray(start, start + CHUNK_SIZE)
      } else {
        const ref = (await this.loadManifest())?.chunks[i]
        if (ref !== undefined) src = await this.chunks.readChunk(ref, { path: this.path() })
      }
    }
    if (src !== undefined) {
      // base bytes past a truncation point read as zeros, even when the file grew again
      const limit = s !== undefined ? len : Math.min(len, Math.max(0, this.baseLimit - start))
      out.set(src.subarray(0, Math.min(limit, src.byteLength)))
    }
    return out
  }

  async read (position: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, position + length)
    if (position >= end) return new Uint8Array(0)
    const out = new Uint8Array(end - position)
    for (let i = Math.floor(position / CHUNK_SIZE); i * CHUNK_SIZE < end; i++) {
      const start = i * CHUNK_SIZE
      const bytes = await this.chunkBytes(i)
      const from = Math.max(position, start)
      const to = Math.min(end, start + bytes.byteLength)
      if (to > from) out.set(bytes.subarray(from - start, to - start), from - position)
    }
    return out
  }

  /** Write `data` (already copied from any kernel buffer) at `position`. */
  async write (data: Uint8Array, position: number): Promise<number> {
    return await this.serial(async () => {
      const end = position + data.byteLength
      if (end > this.size) await this.resize(end)
      for (let i = Math.floor(position / CHUNK_SIZE); i * CHUNK_SIZE < end; i++) {
        const start = i * CHUNK_SIZE
        const from = Math.max(position, start)
        const to = Math.min(end, start + CHUNK_SIZE)
        const whole = from === start && to === Math.min(this.size, start + CHUNK_SIZE)
        let bytes = this.dirty.get(i)
        if (bytes === undefined) {
          bytes = whole ? new Uint8Array(to - start) : await this.chunkBytes(i)
          this.dirty.set(i, bytes)
          this.dirtyBytes += bytes.byteLength
          this.stored.delete(i)
        }
        bytes.set(data.subarray(from - position, to - position), from - start)
      }
      this.changed = true
      this.mtime = nowNs()
      if (this.dirtyBytes > OPEN_FILE_BUFFER_BYTES) await this.spill()
      return data.byteLength
    })
  }

  /** Store every full dirty chunk now (bounded memory for big sequential writes). */
  private async spill (): Promise<void> {
    for (const [i, bytes] of this.dirty) {
      if (bytes.byteLength !== CHUNK_SIZE) continue
      const { ref } = await this.chunks.storeChunk(bytes, i * CHUNK_SIZE)
      this.stored.set(i, ref)
      this.dirty.delete(i)
      this.dirtyBytes -= bytes.byteLength
    }
  }

  /** Change the size: chunks past the end go, the last one is cut or zero-extended. */
  private async resize (len: number): Promise<void> {
    const old = this.size
    if (len === old) return
    const lastOld = Math.ceil(old / CHUNK_SIZE) - 1
    // materialise the boundary chunk at its old length before the size changes
    if (old % CHUNK_SIZE !== 0 && lastOld >= 0 && !this.dirty.has(lastOld) && len > old) {
      const bytes = await this.chunkBytes(lastOld)
      this.dirty.set(lastOld, bytes)
      this.dirtyBytes += bytes.byteLength
      this.stored.delete(lastOld)
    }
    if (len < old) {
      const keep = Math.ceil(len / CHUNK_SIZE)
      const cut = len % CHUNK_SIZE
      if (cut !== 0 && !this.dirty.has(keep - 1)) {
        const bytes = await this.chunkBytes(keep - 1)
        this.dirty.set(keep - 1, bytes)
        this.dirtyBytes += bytes.byteLength
        this.stored.delete(keep - 1)
      }
      for (const [i, bytes] of this.dirty) {
        if (i >= keep) { this.dirty.delete(i); this.dirtyBytes -= bytes.byteLength }
      }
      for (const i of this.stored.keys()) if (i >= keep) this.stored.delete(i)
      if (this.base.size > len) this.baseLimit = Math.min(this.baseLimit, len)
    }
    this.size = len
    // grow or cut the buffer of the (new) last chunk to its length in the new size
    const last = Math.ceil(len / CHUNK_SIZE) - 1
    for (const [i, bytes] of this.dirty) {
      const want = Math.max(0, Math.min(CHUNK_SIZE, len - i * CHUNK_SIZE))
      if (bytes.byteLength !== want && i <= last) {
        const next = new Uint8Array(want)
        next.set(bytes.subarray(0, Math.min(want, bytes.byteLength)))
        this.dirty.set(i, next)
        this.dirtyBytes += want - bytes.byteLength
      }
    }
  }

  /** Base bytes at or past this offset are gone (truncated), even if later regrown. */
  private baseLimit = Number.MAX_SAFE_INTEGER

  async truncate (len: number): Promise<void> {
    await this.serial(async () => {
      await this.resize(len)
      this.changed = true
      this.mtime = nowNs()
    })
  }

  /**
   * Make the current state a committed version: store what is buffered, build the content.
   * Returns undefined when nothing changed. The caller appends the `write` op and then calls
   * committed() with the new base.
   */
  async prepare (): Promise<Committed | undefined> {
    return await this.serial(async () => {
      if (!this.changed) return undefined
      if (this.size <= INLINE_MAX) {
        const bytes = await this.read(0, this.size)
        return { content: this.size === 0 ? null : { inline: bytes }, size: this.size, refs: [] }
      }
      const manifest = await this.loadManifest()
      const refs: ChunkRef[] = []
      const fresh: ChunkRef[] = []
      const n = Math.ceil(this.size / CHUNK_SIZE)
      for (let i = 0; i < n; i++) {
        const start = i * CHUNK_SIZE
        const len = Math.min(CHUNK_SIZE, this.size - start)
        const d = this.dirty.get(i)
        const s = this.stored.get(i)
        const b = manifest?.chunks[i]
        if (d !== undefined) {
          const { ref } = await this.chunks.storeChunk(d, start)
          refs.push(ref); fresh.push(ref)
        } else if (s !== undefined) {
          refs.push(s); fresh.push(s)
        } else if (b !== undefined && b.size === len && start + len <= this.baseLimit) {
          refs.push(b)
        } else if (start >= Math.min(this.base.size, this.baseLimit)) {
          refs.push(holeChunk(start, len))
        } else {
          // base chunk whose length changed (inline base, or cut/regrown): re-store it
          const { ref } = await this.chunks.storeChunk(await this.chunkBytes(i), start)
          refs.push(ref); fresh.push(ref)
        }
      }
      const cid: CID = await this.chunks.storeManifest({ v: 1, size: this.size, chunkSize: CHUNK_SIZE, chunks: refs })
      return { content: { manifest: cid }, size: this.size, refs: fresh }
    })
  }

  /** The version from prepare() is now committed: it becomes the base. */
  committed (c: Committed): void {
    this.base = { content: c.content, size: c.size }
    this.manifest = undefined
    this.dirty.clear()
    this.stored.clear()
    this.dirtyBytes = 0
    this.baseLimit = Number.MAX_SAFE_INTEGER
    this.changed = false
  }

  /** A new committed version arrived from elsewhere: adopt it when nothing is pending here. */
  rebase (base: { content: Content | null, size: number }): void {
    if (this.changed) return
    this.base = base
    this.size = base.size
    this.manifest = undefined
  }
}
