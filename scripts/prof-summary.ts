// Summarise a V8 CPU profile (.cpuprofile, from `npx node --cpu-prof --cpu-prof-dir=DIR script`
// or the inspector's Profiler.stop): milliseconds of self time and of inclusive time (the
// function and everything it called, each function counted once per stack) per function, the
// top of each list. For finding where a benchmark spends its time without a GUI:
//   npx node scripts/prof-summary.ts /tmp/prof/x.cpuprofile [N] [FILTER]
// N: rows per list (default 40); FILTER: only inclusive rows whose name holds this text.
import { readFileSync } from 'node:fs'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const [file, rows = '40', filter] = process.argv.slice(2)
if (file === undefined) {
  process.stderr.write('usage: prof-summary.ts FILE.cpuprofile [N] [FILTER]\n')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
// sampled time per node: each sample's delta goes to the node it landed in
const sampled = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) sampled.set(profile.samples[i], (sampled.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))

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

const top = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))
  .map(([k, ms]) => `${ms.toFixed(0).padStart(8)} ms  ${k}`).join('\n')
const shown = filter === undefined ? inclusive : new Map([...inclusive].filter(([k]) => k.includes(filter)))
process.stdout.write(`self\n${top(self)}\n\ninclusive\n${top(shown)}\n`)
