// Keeps the architecture of DESIGN.md §1 true in the code (run by `npm run lint`):
//  - dependencies run one way: fuse -> node -> swarm -> libp2p;
//  - a room is entered only through its door (node/index.ts, node/tree/index.ts, swarm/index.ts,
//    fuse/index.ts);
//  - each third-party package with a swappable role has one owning file.
// Do not relax these rules to make a change pass: move the code to the room that owns it.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const rooms = ['node', 'swarm', 'fuse'] as const
type Room = typeof rooms[number]

/** Which rooms each room may import from (besides itself). */
const allowed: Record<Room, Room[]> = { fuse: ['node'], node: ['swarm'], swarm: [] }
/** The only files other rooms may import. */
const doors = new Set(['node/index.ts', 'node/tree/index.ts', 'swarm/index.ts', 'fuse/index.ts'])
/** Packages with one owning file (prefix match on the specifier). */
const owners: Array<[string, string[]]> = [
  ['libp2p', ['node/host.ts']],
  ['@libp2p/tcp', ['node/host.ts']],
  ['@libp2p/memory', ['node/host.ts']],
  ['@libp2p/pnet', ['node/host.ts']],
  ['@libp2p/kad-dht', ['node/host.ts']],
  ['@libp2p/identify', ['node/host.ts']],
  ['@libp2p/ping', ['node/host.ts']],
  ['@chainsafe/libp2p-noise', ['node/host.ts']],
  ['@chainsafe/libp2p-yamux', ['node/host.ts']],
  ['@chainsafe/libp2p-gossipsub', ['node/host.ts']],
  ['blockstore-fs', ['node/store.ts']],
  ['fuse-native', ['fuse/index.ts']],
  ['@digitaldefiance/reed-solomon-erasure.wasm', []] // test-only cross-check
]

function * files (dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (name === 'node_modules' || name === 'build') continue
    if (statSync(p).isDirectory()) yield * files(p)
    else if (p.endsWith('.ts')) yield p
  }
}

const problems: string[] = []
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

for (const room of rooms) {
  for (const file of files(join(root, room))) {
    const rel = relative(root, file)
    const src = readFileSync(file, 'utf8')
    for (const m of src.matchAll(importRe)) {
      const spec = m[1] ?? m[2] ?? m[3]
      const dynamic = m[3] !== undefined
      if (spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(file), spec))
        const targetRoom = target.split('/')[0] as Room
        if (!rooms.includes(targetRoom)) {
          problems.push(`${rel}: imports ${spec}, outside the rooms`)
        } else if (targetRoom !== room) {
          // the CLI (composition root) may load fuse/ lazily, only for --mount
          const lazyMount = rel === 'node/cli.ts' && dynamic && target === 'fuse/index.ts'
          if (!allowed[room].includes(targetRoom) && !lazyMount) {
            problems.push(`${rel}: ${room}/ must not depend on ${targetRoom}/ (${spec})`)
          } else if (!doors.has(target)) {
            problems.push(`${rel}: enters ${targetRoom}/ by ${target}, not by its door`)
          }
        } else if (room === 'node' && !rel.startsWith('node/tree/') && target.startsWith('node/tree/') && target !== 'node/tree/index.ts') {
          problems.push(`${rel}: enters node/tree/ by ${target}, not by its door`)
        }
      } else {
        for (const [pkg, owning] of owners) {
          if ((spec === pkg || spec.startsWith(pkg + '/')) && !owning.includes(rel)) {
            problems.push(`${rel}: imports ${spec}, which only ${owning.join(', ') || 'tests'} may import`)
          }
        }
      }
    }
  }
}

if (problems.length > 0) {
  process.stderr.write(`check-rooms: ${problems.length} layering problem(s):\n  ${problems.join('\n  ')}\n`)
  process.exit(1)
}
process.stdout.write('check-rooms: ok\n')
