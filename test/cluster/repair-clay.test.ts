// Clay-coded chunks on real hosts (issue 15 item 6; `up --codec clay`, data/clay.ts,
// keeper/repair.ts clayRepair): files written with the gate on are stored Clay-coded (4+2,
// d = 5) in v3 manifests and read back on every host; one lost host's fragments are rebuilt from
// d helpers' sub-chunk runs (verified range wants against the fragments' roots: half a fragment
// from each, this host's own share from its disk), at most 3 bytes moved per byte lost where
// Reed–Solomon moves 4 (test/cluster/repair-bytes); with two lost at once a chunk missing two
// fragments falls back to k whole ones; a host that does not announce clay/1 keeps every writer
// on Reed–Solomon (manifests v1/v2 as before).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, settleRepair, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { REPAIR_BY_HAND, held, loseAndRepair } from '../helpers/repair-bytes.ts'
import { retained } from '../../node/keeper/index.ts'
import { FEATURES, FEATURE_CLAY } from '../../node/net/index.ts'
import type { ChunkRef, Manifest } from '../../node/data/index.ts'
import { init } from '../../node/cli/index.ts'

const keep = REPAIR_BY_HAND
const FILES = 4
const FILE_BYTES = 4 << 20

async function writeFiles (hosts: ClusterHost[], files: Map<string, Buffer>): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const data = randomBytes(FILE_BYTES)
    files.set(`/c${i}.bin`, data)
    await hosts[i % hosts.length].volume.replaceFile(`/c${i}.bin`, [data], { wait: 'safe' })
  }
  await settleRepair(hosts, { failures: 'allowed' })
}

async function manifestOf (h: ClusterHost, path: string): Promise<Manifest> {
  const content = h.tree.byIno((await h.volume.stat(path)).ino)!.content
  assert.ok(content !== null && 'manifest' in content, `${path} has chunks`)
  return await h.volume.chunks.readManifest(content.manifest)
}

async function codedRefs (h: ClusterHost): Promise<ChunkRef[]> {
  return [...(await retained(h.volume, 3600_000)).chunks.values()].filter(r => r.k > 1)
}

async function readAll (hs: ClusterHost[], files: Map<string, Buffer>): Promise<void> {
  for (const h of hs) {
    // the fragments' leaf hashes kept, as on a host running since they came (a repair's helper
    // then reads its runs alone)
    h.volume.chunks.dropCache({ leafHashes: false })
    for (const [path, data] of files) assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
  }
}

/** Stops `victims` for good (declared gone at once) and waits until every chunk is redundant again and nothing more is repaired. */
async function declareGone (hosts: ClusterHost[], victims: ClusterHost[]): Promise<{ survivors: ClusterHost[], lost: number, lostCoded: number, fetched: number, pushed: number, moved: number, diskRead: number, clayRepairs: number, seconds: number, figures: string }> {
  const survivors = hosts.filter(h => !victims.includes(h))
  const refs = await codedRefs(hosts[0])
  const coded = new Set(refs.flatMap(r => r.fragments.map(f => f.toString())))
  let lost = 0
  let lostCoded = 0
  for (const v of victims) {
    lost += (await v.store.usage()).bytesStored
    for (const c of await held(v)) if (coded.has(c)) lostCoded += (await v.store.get(CID.parse(c))).byteLength
  }
  const totals = survivors.map(h => h.keep.repairer.totals())
  const reads = survivors.map(h => h.store.counters().read)
  const start = performance.now()
  const moved = await loseAndRepair(survivors, victims)
  const seconds = (performance.now() - start) / 1000
  const fetched = survivors.reduce((a, h, i) => a + h.keep.repairer.totals().bytesFetched - totals[i].bytesFetched, 0)
  const pushed = survivors.reduce((a, h, i) => a + h.keep.repairer.totals().bytesPushed - totals[i].bytesPushed, 0)
  const clayRepairs = survivors.reduce((a, h, i) => a + h.keep.repairer.totals().clayRepairs - totals[i].clayRepairs, 0)
  // bytes the survivors read from their block files (whole and sliced): the helpers' runs, the rebuilders' own
  const diskRead = survivors.reduce((a, h, i) => a + h.store.counters().read - reads[i], 0)
  const figures = `lost ${lost} (fragments ${lostCoded}), fetched ${fetched} (${(fetched / lost).toFixed(2)} per byte lost), pushed ${pushed} (${(pushed / lost).toFixed(2)}), swarm sent ${moved} in the passes on leaving (${(moved / lost).toFixed(2)} per byte lost), read from disk ${diskRead} (${(diskRead / lost).toFixed(2)}), ${clayRepairs} fragments from Clay helpers, ${seconds.toFixed(1)} s`
  return { survivors, lost, lostCoded, fetched, pushed, moved, diskRead, clayRepairs, seconds, figures }
}

describe('Clay-coded chunks (--codec clay) on 7 in-process hosts, k=4 m=2 d=5', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('files are stored Clay-coded in v3 manifests and read on every host; one lost host is repaired from helpers\' sub-chunks at most 3 bytes moved per byte lost', async () => {
    const hosts = await startCluster(t, 7, { daemon: { keep, codec: 'clay' } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 6), 60_000)
    // every member announces clay/1 before the gate opens
    await until('every host sees every member read Clay', () => hosts.every(h => h.features.supportedByAll(FEATURE_CLAY)), 60_000)
    const files = new Map<string, Buffer>()
    await writeFiles(hosts, files)
    const refs = await codedRefs(hosts[0])
    assert.ok(refs.length >= FILES * FILE_BYTES / (1 << 20), `${refs.length} erasure-coded chunks`)
    for (const r of refs) {
      assert.equal(r.clay, 5, 'Clay-coded, d = 5')
      assert.equal(r.roots?.length, 6, 'roots of all six fragments')
    }
    for (const path of files.keys()) assert.equal((await manifestOf(hosts[1], path)).v, 3, path)
    await readAll(hosts, files)
    const { survivors, lost, lostCoded, fetched, pushed, moved, diskRead, clayRepairs, figures } = await declareGone(hosts, [hosts[6]])
    console.log(`      clay: ${figures}`)
    // read from disk: 5 helpers' runs, half a fragment each, the rebuilder's own share included
    // (its fragment is not read whole: 3 per fragment byte then); a replicated block's copy once
    assert.ok(diskRead <= 2.5 * lostCoded + (lost - lostCoded), figures)
    // every lost fragment of a Clay chunk rebuilt once from its helpers (none from k whole)
    assert.equal(clayRepairs * (FILE_BYTES / 16), lostCoded, figures)
    // 5 helpers x half a fragment, less the rebuilder's own share: at most 2.5 fetched per
    // fragment byte lost (RS: 3 or 4); the rebuilt fragment goes to its one new holder
    assert.ok(fetched <= 2.5 * lostCoded + (lost - lostCoded), figures)
    // the passes' have-queries come on top (a few dozen bytes per fragment and peer)
    assert.ok(fetched + pushed <= 3 * lost, figures)
    assert.ok(moved <= 3.15 * lost, figures)
    await readAll(survivors, files)
  })

  it('a helper that never answers its range wants: the helpers\' phase ends at its bound (clayPhaseMs) and those chunks are rebuilt from k whole fragments in the same pass', async () => {
    // each holder would be waited for ten minutes (clayHelperWaitMs), a chunk's repair has a
    // minute (REPAIR_CHUNK_TIMEOUT_MS): only the phase's own bound leaves the fallback its time.
    // Without it (clayPhaseMs past the chunk's bound) those chunks fail their pass
    const hosts = await startCluster(t, 7, { daemon: { keep: { ...keep, clayPhaseMs: 3_000, clayHelperWaitMs: 600_000 }, codec: 'clay' } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 6), 60_000)
    await until('every host sees every member read Clay', () => hosts.every(h => h.features.supportedByAll(FEATURE_CLAY)), 60_000)
    const files = new Map<string, Buffer>()
    await writeFiles(hosts, files)
    // one survivor's range wants are never answered (until the end of the test): it still
    // serves whole fragments, which the fallback pulls (from it or the others)
    const silent = hosts[0]
    const leaves = silent.volume.chunks.localLeaves
    let asked = 0
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    const proof = leaves.proof.bind(leaves)
    leaves.proof = async (cid, first, end) => { asked++; await released; return await proof(cid, first, end) }
    t.add(async () => { release() })
    const failedBefore = hosts.slice(0, 6).map(h => h.keep.repairer.totals().failed)
    const { survivors, lostCoded, clayRepairs, figures } = await declareGone(hosts, [hosts[6]])
    const failed = survivors.reduce((a, h, i) => a + h.keep.repairer.totals().failed - failedBefore[i], 0)
    console.log(`      clay, a silent helper: ${figures}, ${asked} range wants to it, ${failed} failed`)
    assert.ok(asked > 0, 'the silent host was asked for sub-chunks')
    // the chunks it helped went to k whole fragments, in their first pass: none failed
    assert.equal(failed, 0, figures)
    assert.ok(clayRepairs < lostCoded / (FILE_BYTES / 16), `some chunk fell back: ${figures}`)
    release()
    await readAll(survivors, files)
  })

  it('two hosts lost at once: a chunk missing two fragments is rebuilt from k whole ones (fallback), one missing one from helpers', async () => {
    const hosts = await startCluster(t, 8, { daemon: { keep, codec: 'clay' } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 7), 60_000)
    await until('every host sees every member read Clay', () => hosts.every(h => h.features.supportedByAll(FEATURE_CLAY)), 60_000)
    const files = new Map<string, Buffer>()
    await writeFiles(hosts, files)
    const refs = await codedRefs(hosts[0])
    const victims = hosts.slice(6)
    const victimHeld = await Promise.all(victims.map(held))
    // chunks that lose exactly one distinct fragment (helpers) and those that lose two (k whole)
    let one = 0
    let two = 0
    for (const r of refs) {
      assert.equal(r.clay, 5)
      const gone = r.fragments.filter(f => victimHeld.some(s => s.has(f.toString()))).length
      if (gone === 1) one++
      if (gone === 2) two++
    }
    assert.ok(two > 0, 'some chunk loses two fragments')
    const { survivors, clayRepairs, figures } = await declareGone(hosts, victims)
    console.log(`      clay, two lost: ${figures}`)
    assert.equal(clayRepairs, one, `${one} chunks lost one fragment, ${two} two: ${figures}`)
    await readAll(survivors, files)
  })

  it('a member that does not announce clay/1 keeps every writer on Reed–Solomon (manifests as before); files read back', async () => {
    const old = FEATURES.filter(f => f !== FEATURE_CLAY)
    const hosts = await startCluster(t, 5, { daemon: { keep, codec: 'clay' } })
    // a sixth host of an "older version": it does not announce clay/1 (nor would it read v3)
    const dir = join(hosts[0].dir, '..', 'old')
    await init(dir, { networkKey: join(hosts[0].dir, 'network.key') })
    hosts.push(await startHost(t, dir, 'old', [hosts[0].address], { daemon: { keep, features: old } }))
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 5), 60_000)
    await until('every host knows the old one lacks clay/1', () => hosts.slice(0, 5).every(h => h.features.lacking(FEATURE_CLAY).includes(hosts[5].host.peerId)), 60_000)
    const files = new Map<string, Buffer>()
    await writeFiles(hosts, files)
    const refs = await codedRefs(hosts[0])
    assert.ok(refs.length > 0)
    for (const r of refs) assert.equal(r.clay, undefined, 'Reed–Solomon while a member does not read Clay')
    for (const path of files.keys()) assert.ok((await manifestOf(hosts[0], path)).v < 3, path)
    await readAll(hosts, files)
  })
})
