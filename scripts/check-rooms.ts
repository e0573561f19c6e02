// Keeps the architecture of DESIGN.md §1 true in the code (run by `npm run lint`). Do not relax
// these rules to make a change pass: move the code to the room that owns it.
//
// Rooms, from the top down. A room may import the rooms below it that its line names, and only
// through their doors (index.ts); never a room above it, never its own door:
//
//   fuse/          the mount                         -> node
//   node/cli/      CLI, daemon                       -> node (the door), api, keeper, net, data, tree
//   node/api/      control API, metrics, events, UI  -> node (the door), keeper, net, data, tree
//   node/keeper/   who holds what; repair, GC, pins  -> node (the door), net, data, tree, swarm
//   node/          the Volume, open files            -> net, data, tree
//   node/net/      libp2p host, membership, sync     -> data, tree, swarm
//   node/data/     chunks, erasure, store, space     -> (nothing but the vocabulary)
//   node/tree/     the replicated op log and CRDT    -> (nothing)
//   swarm/         moving verified blocks            -> (nothing)
//
// The vocabulary of node/ (errors.ts, types.ts, modes.ts, clock.ts, paths.ts, log.ts, abort.ts, pool.ts, wrap.ts, bytes.ts) is open to every
// file under node/: plain shapes and error classes, importing nothing of the rooms.
// `node/cli/cli.ts` may load fuse/ with a dynamic import (only for `--mount`); `node/cli/version.ts`
// reads the version from package.json.
//
// Outside the rooms:
//   harness/       test and bench harness (temp dirs, processes, clusters, the Tinc mesh) -> doors only
//   scripts/       setup, benches, the fault run, builds                           -> doors, harness
//   test/<tier>/   the tiers below reach what their line says; every tier may use harness/ and
//                  test/helpers/, and every door:
//     test/node/   unit tests of node/: any file under node/ (its internals are what they test)
//     test/swarm/  unit tests of swarm/: any file under swarm/
//     test/fuse/   the FUSE adapter: any file under fuse/
//     test/cli/    the CLI as a program, and scripts/build-bin.ts (the build it tests)
//     test/faults/ the wire codecs it fuzzes (swarm/protocol.ts, swarm/errors.ts, node/tree/op.ts)
//     test/helpers/ what the unit tiers it serves may reach (node/, swarm/, fuse/ internals)
//     the rest (volume, cluster, mount, mesh, api): doors only (test/api: the control API against
//                  its OpenAPI document, over the unix socket and `--api` TCP)
//   No test imports another tier's test file; scripts and harness never import test/.
//
// Every static import graph is acyclic (type-only imports included: a cycle of types is still
// two files that cannot be understood apart). Each third-party package with a swappable role
// has one owning file.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')

interface Room { dir: string, may: string[] }
/** Rooms by directory (longest prefix wins), with the rooms each may import. */
const roomList: Room[] = [
  { dir: 'fuse', may: ['node'] },
  { dir: 'node/cli', may: ['node', 'node/api', 'node/keeper', 'node/net', 'node/data', 'node/tree', 'swarm'] },
  { dir: 'node/api', may: ['node', 'node/keeper', 'node/net', 'node/data', 'node/tree', 'swarm'] },
  { dir: 'node/keeper', may: ['node', 'node/net', 'node/data', 'node/tree', 'swarm'] },
  { dir: 'node', may: ['node/net', 'node/data', 'node/tree'] },
  { dir: 'node/net', may: ['node/data', 'node/tree', 'swarm'] },
  { dir: 'node/data', may: [] },
  { dir: 'node/tree', may: [] },
  { dir: 'swarm', may: [] }
]
const vocabulary = new Set(['node/errors.ts', 'node/types.ts', 'node/modes.ts', 'node/clock.ts', 'node/paths.ts', 'node/log.ts', 'node/abort.ts', 'node/pool.ts', 'node/wrap.ts', 'node/bytes.ts'])
const doorOf = (room: string): string => `${room}/index.ts`
const doors = new Set(roomList.map(r => doorOf(r.dir)))

/** Packages with one owning file (prefix match on the specifier). */
const owners: Array<[string, string[]]> = [
  ['libp2p', ['node/net/host.ts']],
  ['@libp2p/tcp', ['node/net/host.ts']],
  ['@libp2p/memory', ['node/net/host.ts']],
  ['@libp2p/pnet', ['node/net/host.ts']],
  ['@libp2p/kad-dht', ['node/net/host.ts']],
  ['@libp2p/identify', ['node/net/host.ts']],
  ['@libp2p/ping', ['node/net/host.ts']],
  ['@chainsafe/libp2p-noise', ['node/net/host.ts']],
  ['@chainsafe/libp2p-yamux', ['node/net/host.ts']],
  ['@chainsafe/libp2p-gossipsub', ['node/net/host.ts']],
  ['@libp2p/gossipsub', ['node/net/host.ts']],
  ['blockstore-fs', ['node/data/store.ts']],
  ['p-queue', ['node/pool.ts']],
  ['fuse-native', ['fuse/index.ts']],
  ['prom-client', ['node/api/metrics.ts']],
  ['ajv', []], // test-only: the OpenAPI conformance test
  ['puppeteer-core', []], // test-only: the dashboard test
  ['@digitaldefiance/reed-solomon-erasure.wasm', []] // test-only cross-check
]

function roomOf (rel: string): Room | undefined {
  let best: Room | undefined
  for (const r of roomList) {
    if (rel.startsWith(r.dir + '/') && (best === undefined || r.dir.length > best.dir.length)) best = r
  }
  return best
}

function * files (dir: string): Generator<string> {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (name === 'node_modules' || name === 'build' || name === 'artifacts') continue
    if (statSync(p).isDirectory()) yield * files(p)
    else if (p.endsWith('.ts')) yield p
  }
}

interface Edge { spec: string, target?: string, dynamic: boolean }
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

function edges (file: string): Edge[] {
  const src = readFileSync(file, 'utf8')
  const out: Edge[] = []
  for (const m of src.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3]
    const dynamic = m[3] !== undefined
    const target = spec.startsWith('.') ? relative(root, resolve(dirname(file), spec.replace(/\?.*$/, ''))) : undefined
    out.push({ spec, target, dynamic })
  }
  return out
}

const problems: string[] = []
const graph = new Map<string, string[]>()

/** The rule for a file inside a room. */
function checkRoomFile (rel: string, room: Room, e: Edge): void {
  if (e.target === undefined) {
    for (const [pkg, owning] of owners) {
      if ((e.spec === pkg || e.spec.startsWith(pkg + '/')) && !owning.includes(rel)) {
        problems.push(`${rel}: imports ${e.spec}, which only ${owning.join(', ') || 'tests'} may import`)
      }
    }
    return
  }
  const t = e.target
  if (rel === 'node/cli/cli.ts' && e.dynamic && t === 'fuse/index.ts') return // lazy --mount
  if (rel === 'node/cli/version.ts' && t === 'package.json') return // `darkfs --version`
  if (vocabulary.has(t) && rel.startsWith('node/')) return
  const to = roomOf(t)
  if (to === undefined) { problems.push(`${rel}: imports ${e.spec}, outside the rooms`); return }
  if (to.dir === room.dir) {
    if (t === doorOf(room.dir) && rel !== t) problems.push(`${rel}: imports its own room's door (${e.spec}); import the file itself`)
    return
  }
  if (!room.may.includes(to.dir)) problems.push(`${rel}: ${room.dir}/ must not depend on ${to.dir}/ (${e.spec})`)
  else if (t !== doorOf(to.dir)) problems.push(`${rel}: enters ${to.dir}/ by ${t}, not by its door ${doorOf(to.dir)}`)
}

/** What a file outside the rooms (test/, scripts/, harness/) may import. */
function checkOutside (rel: string, e: Edge): void {
  const t = e.target
  if (t === undefined) return
  const tier = rel.startsWith('test/') ? rel.split('/')[1] : undefined
  if (t.startsWith('test/')) {
    if (tier === undefined) { problems.push(`${rel}: imports ${t}; scripts and harness never import test/`); return }
    const ok = t.startsWith('test/helpers/') || t.startsWith(`test/${tier}/`)
    if (!ok) problems.push(`${rel}: imports ${t}, another tier's file (shared code belongs in harness/ or test/helpers/)`)
    return
  }
  if (t.startsWith('harness/')) {
    if (rel.startsWith('harness/') || rel.startsWith('scripts/') || tier !== undefined) return
  }
  if (t.startsWith('scripts/')) {
    if (rel.startsWith('scripts/')) return
    if (tier === 'cli' && t === 'scripts/build-bin.ts') return
    problems.push(`${rel}: imports ${t}; only scripts/ imports scripts/ (shared code belongs in harness/)`)
    return
  }
  if (doors.has(t) || t.startsWith('harness/')) return
  const room = roomOf(t)
  if (room === undefined) { problems.push(`${rel}: imports ${t}, outside every room`); return }
  const reach: Record<string, string[]> = {
    node: ['node/'],
    swarm: ['swarm/'],
    fuse: ['fuse/'],
    helpers: ['node/', 'swarm/', 'fuse/'],
    faults: ['swarm/protocol.ts', 'swarm/errors.ts', 'node/tree/op.ts'],
    api: [] // doors only
  }
  if (tier !== undefined && (reach[tier] ?? []).some(r => t.startsWith(r))) return
  problems.push(`${rel}: enters ${room.dir}/ by ${t}, not by its door (test/${tier ?? '?'} reaches doors only; see the rules at the top of this file)`)
}

for (const top of ['fuse', 'node', 'swarm', 'harness', 'scripts', 'test']) {
  for (const file of files(join(root, top))) {
    const rel = relative(root, file)
    const es = edges(file)
    graph.set(rel, es.filter(e => !e.dynamic && e.target !== undefined).map(e => e.target!))
    const room = roomOf(rel)
    for (const e of es) {
      if (room !== undefined) checkRoomFile(rel, room, e)
      else checkOutside(rel, e)
    }
  }
}

// import cycles (Tarjan's strongly connected components over static imports)
{
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++
    stack.push(v); on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do { w = stack.pop()!; on.delete(w); scc.push(w) } while (w !== v)
      if (scc.length > 1) problems.push(`import cycle: ${scc.sort().join(' <-> ')}`)
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
}

if (problems.length > 0) {
  process.stderr.write(`check-rooms: ${problems.length} layering problem(s):\n  ${problems.join('\n  ')}\n`)
  process.exit(1)
}
process.stdout.write(`check-rooms: ok (${graph.size} files, no cycles)\n`)
