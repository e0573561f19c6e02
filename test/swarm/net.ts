// Test rig for swarm tests: real libp2p nodes on the memory transport (or loopback TCP), each
// with an in-memory block store and a swarm, torn down in reverse order of creation.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p, Stream } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createSwarm, libp2pComponents } from '../../swarm/index.ts'
import type { BlockSink, BlockSource, Swarm, SwarmComponents, SwarmInit } from '../../swarm/index.ts'

export interface MemBlocks {
  map: Map<string, Uint8Array>
  puts: number
  /** Per block, the `from` and `origin` its last push came with (none for a fetched block). */
  pushed: Map<string, { from?: string, origin?: string }>
  has: (cid: CID) => Promise<boolean>
  get: (cid: CID) => Promise<Uint8Array>
  put: (cid: CID, bytes: Uint8Array, opts?: { from?: string, origin?: string }) => Promise<void>
}

export function memBlocks (): MemBlocks {
  const store: MemBlocks = {
    map: new Map(),
    puts: 0,
    pushed: new Map(),
    has: async (cid) => store.map.has(cid.toString()),
    get: async (cid) => {
      const b = store.map.get(cid.toString())
      if (b === undefined) throw new Error(`no block ${cid.toString()}`)
      return b
    },
    put: async (cid, bytes, opts) => {
      store.puts++
      store.map.set(cid.toString(), Uint8Array.from(bytes))
      if (opts?.from !== undefined) store.pushed.set(cid.toString(), { from: opts.from, origin: opts.origin })
    }
  }
  return store
}

export interface TestNode { libp2p: Libp2p, swarm: Swarm, store: MemBlocks, id: string }

export async function block (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

export function randomBytes (n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 0xff }
  return out
}

let counter = 0

/** Resolves when the stream has closed (for any reason). */
/** A chunk's six 64 KiB fragments (4 data, 2 parity), fragment j stored on holders[j] only. */
export async function chunkOn (holders: Array<{ id: string, store: { map: Map<string, Uint8Array> } }>, seed: number): Promise<{ cids: CID[], from: Map<string, string[]> }> {
  const cids: CID[] = []
  const from = new Map<string, string[]>()
  for (let j = 0; j < 6; j++) {
    const bytes = randomBytes(64 * 1024, seed + j)
    const c = await block(bytes)
    holders[j].store.map.set(c.toString(), bytes)
    cids.push(c)
    from.set(c.toString(), [holders[j].id])
  }
  return { cids, from }
}

export async function closed (stream: Stream): Promise<void> {
  if (stream.status === 'closed' || stream.status === 'aborted' || stream.status === 'reset') return
  await new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }, { once: true }) })
}

export class Net {
  readonly nodes: TestNode[] = []
  private readonly teardown: Array<() => Promise<void>> = []
  private readonly transport: 'memory' | 'tcp'
  /** yamux's keep-alive pings (on by default; off as on darkfs's hosts, net/host.ts: no RTT, no window growth). */
  private readonly keepAlive: boolean
  constructor (transport: 'memory' | 'tcp' = 'memory', opts: { keepAlive?: boolean } = {}) {
    this.transport = transport
    this.keepAlive = opts.keepAlive ?? true
  }

  /**
   * A node; `range`: how its block source answers RANGE_WANTs (none: "not held"); `check`: its
   * sink's own check of pushed blocks (BlockSink.check; none: the swarm hashes them); `source`:
   * fields of its block source in place of the store's (with a `range` only); `components`:
   * other fields of its SwarmComponents (e.g. frameBytes).
   */
  async node (init: SwarmInit = {}, range?: BlockSource['range'], check?: BlockSink['check'], source: Partial<BlockSource> = {}, components: Pick<SwarmComponents, 'frameBytes'> = {}): Promise<TestNode> {
    const libp2p = await createLibp2p({
      addresses: { listen: [this.transport === 'memory' ? `/memory/swarm-test-${process.pid}-${counter++}` : '/ip4/127.0.0.1/tcp/0'] },
      transports: [this.transport === 'memory' ? memory() : tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ enableKeepAlive: this.keepAlive })]
    })
    this.teardown.push(async () => { await libp2p.stop() })
    const store = memBlocks()
    const sink = check === undefined ? store : { put: store.put, check }
    const swarm = createSwarm(init)({ ...libp2pComponents(libp2p, range === undefined ? store : { has: store.has, get: store.get, range, ...source }, sink), ...components })
    await swarm.start()
    this.teardown.push(async () => { await swarm.stop() })
    const node = { libp2p, swarm, store, id: libp2p.peerId.toString() }
    this.nodes.push(node)
    return node
  }

  /** A libp2p node without a swarm, for playing a misbehaving peer by hand. */
  async bare (): Promise<Libp2p> {
    const libp2p = await createLibp2p({
      addresses: { listen: [this.transport === 'memory' ? `/memory/swarm-test-${process.pid}-${counter++}` : '/ip4/127.0.0.1/tcp/0'] },
      transports: [this.transport === 'memory' ? memory() : tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    this.teardown.push(async () => { await libp2p.stop() })
    return libp2p
  }

  /** Connect every node to every other. */
  async mesh (): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      for (let j = i + 1; j < this.nodes.length; j++) {
        await this.nodes[i].libp2p.dial(this.nodes[j].libp2p.getMultiaddrs()[0])
      }
    }
  }

  async stop (): Promise<void> {
    for (const fn of this.teardown.reverse()) await fn().catch(() => {})
    this.teardown.length = 0
  }
}
