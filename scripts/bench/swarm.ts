// Swarm throughput on loopback TCP (noise + yamux), all nodes in this process:
//  - pull MiB/s of 1 MiB blocks from 1 holder and from 4 holders (pullAny of all blocks);
//  - push MiB/s of 1 MiB blocks along a chain of 3 holders, and the writer's upload per byte
//    written (1.0 is the goal of forwarding: the writer sends each byte once);
//  - the upload and download caps: the rate a capped transfer reaches, as a share of the cap
//    (test/swarm/limits.test.ts checks that the caps hold bytes back; the rates are measured here).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { randomFillSync } from 'node:crypto'
import { createSwarm, libp2pComponents } from '../../swarm/index.ts'
import type { Swarm, SwarmInit } from '../../swarm/index.ts'

/** Block size: one chunk with k = 1. */
const BLOCK_BYTES = 1024 * 1024
/** Blocks moved per figure. */
const BLOCKS = 32
const MiB = 1024 * 1024

interface BenchNode { libp2p: Libp2p, swarm: Swarm, store: Map<string, Uint8Array>, id: string }

async function node (cleanup: Array<() => Promise<void>>, init: SwarmInit = {}): Promise<BenchNode> {
  const libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  cleanup.push(async () => { await libp2p.stop() })
  const store = new Map<string, Uint8Array>()
  const blocks = {
    has: async (cid: CID) => store.has(cid.toString()),
    get: async (cid: CID) => {
      const b = store.get(cid.toString())
      if (b === undefined) throw new Error('not found')
      return b
    },
    put: async (cid: CID, bytes: Uint8Array) => { store.set(cid.toString(), bytes) }
  }
  const swarm = createSwarm(init)(libp2pComponents(libp2p, blocks, blocks))
  await swarm.start()
  cleanup.push(async () => { await swarm.stop() })
  return { libp2p, swarm, store, id: libp2p.peerId.toString() }
}

async function makeBlocks (n: number): Promise<Array<{ cid: CID, bytes: Uint8Array }>> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const bytes = randomFillSync(new Uint8Array(BLOCK_BYTES))
    return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
  }))
}

async function connect (nodes: BenchNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) await nodes[i].libp2p.dial(nodes[j].libp2p.getMultiaddrs()[0])
  }
}

async function pullFigure (holders: number): Promise<number> {
  const cleanup: Array<() => Promise<void>> = []
  try {
    const reader = await node(cleanup)
    const hs = await Promise.all(Array.from({ length: holders }, async () => await node(cleanup)))
    await connect([reader, ...hs])
    const blocks = await makeBlocks(BLOCKS)
    for (const h of hs) for (const b of blocks) h.store.set(b.cid.toString(), b.bytes)
    // warm up the streams
    await reader.swarm.pull(blocks[0].cid, hs.map(h => h.id))
    const start = performance.now()
    await reader.swarm.pullAny(blocks.map(b => b.cid), blocks.length, hs.map(h => h.id))
    return BLOCKS * BLOCK_BYTES / MiB / ((performance.now() - start) / 1000)
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
  }
}

async function pushFigure (): Promise<{ mibps: number, upload: number }> {
  const cleanup: Array<() => Promise<void>> = []
  try {
    const writer = await node(cleanup)
    const hs = [await node(cleanup), await node(cleanup), await node(cleanup)]
    await connect([writer, ...hs])
    const blocks = await makeBlocks(BLOCKS)
    const start = performance.now()
    const acks = await writer.swarm.push(blocks.map(b => ({ ...b, to: hs.map(h => h.id) })))
    const seconds = (performance.now() - start) / 1000
    for (const b of blocks) {
      if (acks.get(b.cid.toString())?.length !== 3) throw new Error('a push was not acknowledged by all 3 holders')
    }
    return { mibps: BLOCKS * BLOCK_BYTES / MiB / seconds, upload: writer.swarm.stats().bytesSent / (BLOCKS * BLOCK_BYTES) }
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
  }
}

/** The cap of the cap figures (bytes/s), and the blocks moved under it (6 s of transfer). */
const CAP_BYTES_PER_SECOND = 512 * 1024
const CAP_BLOCKS = 12
const CAP_BLOCK_BYTES = 256 * 1024

/**
 * A pull of CAP_BLOCKS blocks from a holder whose upload is capped (or by a reader whose
 * download is): the rate past the burst (a quarter second of the cap passes at once), as a
 * share of the cap. 1.0 is a cap held exactly; above 1 it lets too much through.
 */
async function capFigure (side: 'upload' | 'download'): Promise<number> {
  const cleanup: Array<() => Promise<void>> = []
  try {
    const reader = await node(cleanup, side === 'download' ? { maxDownloadBytesPerSecond: CAP_BYTES_PER_SECOND } : {})
    const holder = await node(cleanup, side === 'upload' ? { maxUploadBytesPerSecond: CAP_BYTES_PER_SECOND } : {})
    await connect([reader, holder])
    const blocks = await Promise.all(Array.from({ length: CAP_BLOCKS }, async () => {
      const bytes = randomFillSync(new Uint8Array(CAP_BLOCK_BYTES))
      return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
    }))
    for (const b of blocks) holder.store.set(b.cid.toString(), b.bytes)
    const start = performance.now()
    await reader.swarm.pullAny(blocks.map(b => b.cid), blocks.length, [holder.id])
    const seconds = (performance.now() - start) / 1000
    const pastBurst = CAP_BLOCKS * CAP_BLOCK_BYTES - CAP_BYTES_PER_SECOND * 0.25
    return pastBurst / seconds / CAP_BYTES_PER_SECOND
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
  }
}

export async function run (): Promise<Record<string, number | string>> {
  const one = await pullFigure(1)
  const four = await pullFigure(4)
  const push = await pushFigure()
  const upload = await capFigure('upload')
  const download = await capFigure('download')
  return {
    'swarm.cap.upload.share-of-cap': Math.round(upload * 1000) / 1000,
    'swarm.cap.download.share-of-cap': Math.round(download * 1000) / 1000,
    'swarm.pull.1-holder.MiBps': Math.round(one * 10) / 10,
    'swarm.pull.4-holders.MiBps': Math.round(four * 10) / 10,
    'swarm.push.chain-3.MiBps': Math.round(push.mibps * 10) / 10,
    'swarm.push.chain-3.writer-upload-per-byte': Math.round(push.upload * 1000) / 1000,
    'swarm.transport': 'loopback tcp + noise + yamux, one process, 1 MiB blocks'
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await run(), null, 2))
}
