// Helpers for the tree tests: Ed25519 signers, replicas in temp dirs, op exchange, snapshots.
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import type { PrivateKey } from '@libp2p/interface'
import { Tree, type Signer, type Verify, type InodeId, type OpBody } from '../../node/tree/index.ts'
import { tempDir, type Teardown } from '../../harness/tmp.ts'
import { cidOf as cidOfBytes } from '../../node/tree/op.ts'

export { cidOfBytes }

export async function makeKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

export function signerFor (key: PrivateKey): Signer {
  return { author: peerIdFromPrivateKey(key).toString(), sign: async (bytes) => await key.sign(bytes) }
}

export const verify: Verify = async (author, bytes, sig) => {
  const pk = peerIdFromString(author).publicKey
  return pk !== undefined && await pk.verify(bytes, sig)
}

export interface Replica { tree: Tree, dir: string, key: PrivateKey, signer: Signer, clock: { ms: number } }

/** A tree in its own temp dir, closed at teardown. The wall clock is manual: `clock.ms`. */
export async function replica (t: Teardown, opts: { dir?: string, key?: PrivateKey, ms?: number, writtenSyncMs?: number } = {}): Promise<Replica> {
  const dir = opts.dir ?? await tempDir(t, 'darkfs-tree-')
  const key = opts.key ?? await makeKey()
  const signer = signerFor(key)
  const clock = { ms: opts.ms ?? 1_700_000_000_000 }
  const tree = await Tree.open({ dir, signer, verify, now: () => clock.ms, writtenSyncMs: opts.writtenSyncMs })
  t.add(async () => { await tree.close() })
  return { tree, dir, key, signer, clock }
}

/** Every op block a tree holds, by CID string (walks from the heads through parents). */
export function allOps (tree: Tree): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>()
  const todo: CID[] = tree.heads()
  while (todo.length > 0) {
    const cid = todo.pop() as CID
    const s = cid.toString()
    if (out.has(s)) continue
    const bytes = tree.getOp(cid)
    if (bytes === undefined) throw new Error(`missing op ${s}`)
    out.set(s, bytes)
    const op: any = dagCbor.decode(bytes)
    for (const p of op.parents) todo.push(p)
  }
  return out
}

/** Send `from` every op `to` lacks, in one batch. */
export async function sync (from: Tree, to: Tree): Promise<void> {
  const blocks = [...allOps(from).values()].filter(b => !to.hasOp(cidOfBytes(b)))
  const r = await to.receive(blocks)
  if (r.missing.length > 0) throw new Error(`sync left ${r.missing.length} missing`)
}


export const sec = (s: number): bigint => BigInt(s) * 1_000_000_000n + 1_700_000_000_000_000_000n

export function mkdir (parent: InodeId, name: string, time = sec(1)): OpBody {
  return { type: 'create', parent, name, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time }
}

export function mkfile (parent: InodeId, name: string, text?: string, time = sec(1)): OpBody {
  const body: OpBody = { type: 'create', parent, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, time }
  if (text !== undefined) { body.content = { inline: new TextEncoder().encode(text) }; body.size = body.content.inline.byteLength }
  return body
}

export function write (inode: InodeId, text: string, time = sec(2)): OpBody {
  const inline = new TextEncoder().encode(text)
  return { type: 'write', inode, content: { inline }, size: inline.byteLength, time }
}

export function text (tree: Tree, path: string): string | undefined {
  const inode = resolve(tree, path)
  const c = inode === undefined ? undefined : tree.get(inode)?.content
  return c != null && 'inline' in c ? new TextDecoder().decode(c.inline) : undefined
}

export function resolve (tree: Tree, path: string): InodeId | undefined {
  let id: InodeId = tree.root
  for (const part of path.split('/').filter(p => p !== '')) {
    const e = tree.lookup(id, part)
    if (e === undefined) return undefined
    id = e.inode
  }
  return id
}

/** Names in a directory (by path). */
export function ls (tree: Tree, path: string): string[] {
  const id = resolve(tree, path)
  return id === undefined ? [] : tree.children(id).map(e => e.name)
}

/** A canonical, comparable picture of the whole tree. */
export function snapshot (tree: Tree): string {
  const lines: string[] = []
  const seen = new Set<InodeId>()
  const walk = (dir: InodeId, prefix: string, depth: number): void => {
    if (depth > 1000) throw new Error('too deep: cycle?')
    for (const e of tree.children(dir)) {
      const i = tree.get(e.inode)
      if (i === undefined) throw new Error(`entry ${e.id} names unknown inode`)
      const c = i.content == null ? '-' : 'inline' in i.content ? Buffer.from(i.content.inline).toString('hex') : i.content.manifest.toString()
      const x = [...i.xattrs].sort().map(([k, v]) => `${k}=${Buffer.from(v).toString('hex')}`).join(',')
      const h = tree.history(i.id).map(v => v.op.toString()).join(',')
      lines.push(`${prefix}/${e.name} ${e.id} ${i.id} ${i.ino} ${i.kind} ${i.mode.toString(8)} ${i.uid}:${i.gid} ${i.size} ${c} ${i.target ?? ''} ${i.mtime} ${i.ctime} ${i.atime} ${i.nlink} [${x}] [${h}]`)
      if (i.kind === 'dir') {
        if (seen.has(i.id)) throw new Error(`dir ${i.id} reachable twice`)
        seen.add(i.id)
        walk(i.id, `${prefix}/${e.name}`, depth + 1)
      }
    }
  }
  walk(tree.root, '', 0)
  const root = tree.get(tree.root)
  lines.push(`root ${root?.mode} ${root?.nlink} ${root?.ctime}`)
  for (const c of tree.conflicts().sort((a, b) => a.entry < b.entry ? -1 : 1)) lines.push(`conflict ${c.path} ${c.entry} ${c.inode} ${c.of} ${c.author} ${c.time}`)
  return lines.join('\n')
}

/** Deliver blocks in a shuffled order, in small batches; every op lands (none missing). */
export async function deliver (tree: Tree, blocks: Uint8Array[], seed: number): Promise<void> {
  let x = (seed >>> 0) || 1
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000 }
  const list = [...blocks]
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  let missing = 0
  while (list.length > 0) missing = (await tree.receive(list.splice(0, 1 + Math.floor(rand() * 4)))).missing.length
  assert.equal(missing, 0)
}

/**
 * A fold a replica may make from what it reads (`foldPoint`, inline contents as the property tests
 * write them): c, the `part`-th count of extents it may hold (the first c, c at least every one the
 * content holds somewhere), the file's size then, the content read now cut to that size, and the
 * file with its first c extents laid over it. Undefined when no fold is due.
 */
export function foldOf (fp: NonNullable<ReturnType<Tree['foldPoint']>>, part: number): { c: number, size: number, now: Uint8Array, full: Uint8Array } | undefined {
  const can = [...new Set(fp.numbers)].filter(n => n >= fp.top && n > fp.covered)
  if (can.length === 0) return undefined
  const c = can[part % can.length]
  const size = fp.sizes[c - fp.covered - 1]
  const now = new Uint8Array(size)
  if (fp.content !== null) now.set((fp.content as { inline: Uint8Array }).inline.subarray(0, Math.min(fp.size, size)))
  const full = now.slice()
  fp.extents.forEach((x, j) => { if (fp.numbers[j] <= c) full.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos) })
  return { c, size, now, full }
}
