// Summarise a V8 CPU profile (.cpuprofile, from `npx node --cpu-prof --cpu-prof-dir=DIR script`
// or the inspector's Profiler.stop): milliseconds of self time and of inclusive time (the
// function and everything it called, each function counted once per stack) per function, the
// top of each list. For finding where a benchmark spends its time without a GUI:
//   npx node scripts/prof-summary.ts /tmp/prof/x.cpuprofile [N] [FILTER]
// N: rows per list (default 40); FILTER: only inclusive rows whose name holds this text.
//   npx node scripts/prof-summary.ts /tmp/prof/x.cpuprofile --tree FUNCTION [MIN_MS]
// instead: what the outermost frames of FUNCTION (a function name: readRange, `(root)` for the
// whole profile) called, top-down, their stacks merged by function and place, each row its
// inclusive and self ms, rows under MIN_MS (default 5) left out: where a path's time goes layer
// by layer (a 4 KiB read's send through yamux, Noise and pnet to the socket's write, rread44),
// which the flat lists above spread over many names.
import { readFileSync } from 'node:fs'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const [file, rows = '40', filter, minMs = '5'] = process.argv.slice(2)
if (file === undefined || (rows === '--tree' && filter === undefined)) {
  process.stderr.write('usage: prof-summary.ts FILE.cpuprofile [N] [FILTER] | FILE.cpuprofile --tree FUNCTION [MIN_MS]\n')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
// sampled time per node: each sample's delta goes to the node it landed in
const sampled = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) sampled.set(profile.samples[i], (sampled.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))

/** Sampled ms of node `id` and everything under it. */
const below = new Map<number, number>()
function totalMs (id: number): number {
  let ms = below.get(id)
  if (ms !== undefined) return ms
  ms = (sampled.get(id) ?? 0) / 1000
  for (const c of byId.get(id)?.children ?? []) ms += totalMs(c)
  below.set(id, ms)
  return ms
}

const name = (n: ProfileNode): string => `${n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
for (const n of profile.nodes) {
  const ms = (sampled.get(n.id) ?? 0) / 1000
  if (ms === 0) continue
  self.set(name(n), (self.get(name(n)) ?? 0) + ms)
  // every function on the stack once (recursion would count a sample several times)
  const onStack = new Set<string>()
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) onStack.add(name(byId.get(id) as ProfileNode))
  for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + ms)
}

/** The children of nodes `ids`, merged by name, as rows of `indent`, then theirs below each. */
function tree (ids: number[], indent: string, out: string[]): void {
  const groups = new Map<string, number[]>()
  for (const id of ids) {
    for (const c of byId.get(id)?.children ?? []) {
      const k = name(byId.get(c) as ProfileNode)
      const g = groups.get(k)
      if (g === undefined) groups.set(k, [c])
      else g.push(c)
    }
  }
  const merged = [...groups].map(([k, cs]) => ({ k, cs, ms: cs.reduce((s, c) => s + totalMs(c), 0) })).sort((a, b) => b.ms - a.ms)
  for (const { k, cs, ms } of merged) {
    if (ms < Number(minMs)) continue
    const selfMs = cs.reduce((s, c) => s + (sampled.get(c) ?? 0) / 1000, 0)
    out.push(`${indent}${ms.toFixed(0).padStart(6)} ms  ${k}  (self ${selfMs.toFixed(0)})`)
    tree(cs, indent + ' ', out)
  }
}

if (rows === '--tree') {
  const fn = filter as string
  const inside = (id: number): boolean => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) if (byId.get(p)?.callFrame.functionName === fn) return true
    return false
  }
  const outermost = profile.nodes.filter(n => n.callFrame.functionName === fn && !inside(n.id)).map(n => n.id)
  const lines: string[] = []
  tree(outermost, ' ', lines)
  process.stdout.write(`${fn}: ${outermost.reduce((s, id) => s + totalMs(id), 0).toFixed(0)} ms in all\n${lines.join('\n')}\n`)
  process.exit(0)
}

const top = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))
  .map(([k, ms]) => `${ms.toFixed(0).padStart(8)} ms  ${k}`).join('\n')
const shown = filter === undefined ? inclusive : new Map([...inclusive].filter(([k]) => k.includes(filter)))
process.stdout.write(`self\n${top(self)}\n\ninclusive\n${top(shown)}\n`)
