// The merge receive of bench/tree.ts in a fresh process, and again in the same process (issue 15
// item 8: why a process's first merge costs ~2x its later ones). The pair of replicas is made
// by a first call, which keeps it in BASE and exits; each later call is a fresh process that
// opens a copy of the receiving replica (its log replayed), times one receive() of the other's
// ops, and does it again REPS times on fresh copies. For each receive: main-thread CPU ms (user,
// system), the process's minor page faults, and the collections during it. Then the CPU cost of
// one first touch of a page on this machine (a buffer written once, then again). Not a benchmark
// of its own (the leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_fresh-warm.ts    BASE=dir ($TMPDIR/darkfs-fresh-warm), N=n ops per replica
//                                            (10,000; when the pair is made), REPS=n (4)
//   rm -r BASE when done.
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GCProfiler } from 'node:v8'
import { generateKeyPair, privateKeyToProtobuf, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import * as dagCbor from '@ipld/dag-cbor'
import { cidOf, Tree } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { diverge, ops, sharedBase } from './tree.ts'

const base = process.env.BASE ?? join(tmpdir(), 'darkfs-fresh-warm')
const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 4)

if (!existsSync(join(base, 'toB.cbor'))) {
  await mkdir(base, { recursive: true })
  const kb = await generateKeyPair('Ed25519')
  const a = await Tree.open({ dir: join(base, 'a'), signer: signerFor(await generateKeyPair('Ed25519')), verify })
  const b = await Tree.open({ dir: join(base, 'b'), signer: signerFor(kb), verify })
  const { ha, hb, shared } = await sharedBase(a, b)
  await Promise.all([diverge(a, ha, shared, 'a', N), diverge(b, hb, shared, 'b', N)])
  const toB = ops(a).filter(x => !b.hasOp(cidOf(x)))
  await b.close()
  await a.close()
  await writeFile(join(base, 'toB.cbor'), dagCbor.encode(toB))
  await writeFile(join(base, 'key'), privateKeyToProtobuf(kb))
  console.log(`pair made in ${base}: run again for the figures`)
  process.exit(0)
}

const toB = dagCbor.decode(await readFile(join(base, 'toB.cbor'))) as Uint8Array[]
const key = signerFor(privateKeyFromProtobuf(await readFile(join(base, 'key'))))
const out: string[] = []
for (let rep = 0; rep < REPS; rep++) {
  const dir = join(base, `b-${process.pid}-${rep}`)
  await cp(join(base, 'b'), dir, { recursive: true })
  const b = await Tree.open({ dir, signer: key, verify })
  try {
    const gc = new GCProfiler()
    gc.start()
    const r0 = process.resourceUsage()
    const c0 = process.threadCpuUsage()
    await b.receive(toB)
    const c = process.threadCpuUsage(c0)
    const faults = process.resourceUsage().minorPageFault - r0.minorPageFault
    const gcs = gc.stop()?.statistics ?? []
    const scavenges = gcs.filter(g => g.gcType === 'Scavenge').length
    out.push(`${Math.round((c.user + c.system) / 1000)} ms (user ${Math.round(c.user / 1000)}, system ${Math.round(c.system / 1000)}), ${faults} faults, ${scavenges} scavenges, ${gcs.length - scavenges} other collections`)
  } finally {
    await b.close()
    await rm(dir, { recursive: true, force: true })
  }
}
for (let i = 0; i < out.length; i++) console.log(`receive ${i}: ${out[i]}`)

// a page's first touch: 64 MiB written once (every page fresh), then again
const buf = Buffer.allocUnsafeSlow(64 * 2 ** 20)
const r0 = process.resourceUsage()
let c0 = process.threadCpuUsage()
for (let i = 0; i < buf.length; i += 4096) buf[i] = 1
const first = process.threadCpuUsage(c0)
const faults = process.resourceUsage().minorPageFault - r0.minorPageFault
c0 = process.threadCpuUsage()
for (let i = 0; i < buf.length; i += 4096) buf[i] = 2
const again = process.threadCpuUsage(c0)
console.log(`first touch: ${faults} faults, ${((first.user + first.system) / Math.max(1, faults)).toFixed(1)} us CPU each (user ${(first.user / Math.max(1, faults)).toFixed(1)}); the same pages again: ${((again.user + again.system) / 1000).toFixed(1)} ms in all`)
