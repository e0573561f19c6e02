// `npm run bench`: runs every benchmark module in scripts/bench/ (each exports run(), which
// returns named figures), prints the figures and writes them to bench/results.json.
// DARKFS_BENCH=name,name runs only those modules (the file keeps the others' last figures).
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const only = process.env.DARKFS_BENCH?.split(',').filter(s => s !== '')
/** Modules with a script of their own (they need root and minutes): run only when named. */
const OWN_SCRIPT = new Set(['mesh'])
const modules = (await readdir(here)).filter(f => f.endsWith('.ts') && f !== 'index.ts' && !f.startsWith('_')).sort()
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.versions.node }
let failed = 0

for (const file of modules) {
  const name = file.replace(/\.ts$/, '')
  if (only !== undefined ? !only.includes(name) : OWN_SCRIPT.has(name)) continue
  process.stdout.write(`bench ${name}\n`)
  const started = Date.now()
  try {
    const mod = await import(join(here, file))
    const figures: Record<string, number | string> = await mod.run()
    for (const [k, v] of Object.entries(figures)) {
      process.stdout.write(`  ${k.padEnd(48)} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}\n`)
      results[k] = v
    }
    process.stdout.write(`  (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  } catch (err: any) {
    failed++
    // a module that measured, then found something wrong, throws with the figures it has
    for (const [k, v] of Object.entries(err?.figures ?? {})) results[k] = v as number | string
    process.stdout.write(`  FAILED: ${err?.stack ?? err}\n`)
    results[`${name}.error`] = String(err?.message ?? err)
  }
}

await mkdir(join(root, 'bench'), { recursive: true })
const file = join(root, 'bench', 'results.json')
// a run of some modules keeps the other modules' last figures
const earlier = only === undefined ? {} : await readFile(file, 'utf8').then(t => JSON.parse(t), () => ({}))
await writeFile(file, JSON.stringify({ ...earlier, ...results }, null, 2) + '\n')
process.stdout.write(`wrote ${file}\n`)
process.exitCode = failed > 0 ? 1 : 0
