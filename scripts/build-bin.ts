// Builds the single binary dist/darkfs (`npm run build:bin`): one executable file that runs
// `darkfs init/up/put/...` on a machine without Node or node_modules. It still needs the system's
// libfuse3 for `up --mount` and uses libisal when present (else the TypeScript erasure kernel).
//
// How: a Node single executable application (SEA, `node --build-sea`, Node >= 25.5):
//  1. esbuild bundles node/cli/cli.ts and everything it imports, including the lazily imported
//     node/daemon.ts, node/local.ts and fuse/index.ts, libp2p and every dependency, into one ESM
//     file (the SEA runs it with "mainFormat": "module", so top-level await and import.meta work);
//  2. the native addons (erasure.node, fuse.node) go in as SEA assets named by their path from
//     the repo root; node/erasure.ts and fuse/addon.ts load them from there inside the binary;
//     so do the dashboard's files (node/api/dashboard/*, served by node/api/dashboard.ts);
//  3. a copy of the Node that runs this script (the pinned Node 26) is stripped of its symbol
//     tables and debug info and becomes the base executable the blob is injected into.
//
// Usage: node scripts/build-bin.ts [--out FILE] [--no-strip]
// esbuild comes from node_modules/.bin/esbuild, or from the ESBUILD environment variable.
import { execFile } from 'node:child_process'
import { access, chmod, copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DASHBOARD_DIR, DASHBOARD_FILES } from '../node/api/index.ts'

/** The repo root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** The CLI, the binary's entry point. */
export const ENTRY = 'node/cli/cli.ts'
/** Where `npm run build:bin` writes the binary, from the repo root. */
export const DEFAULT_OUT = 'dist/darkfs'
/** The esbuild release the script was written against (the devDependency to add). */
export const ESBUILD_VERSION = '0.28.2'
/** Oldest Node whose `--build-sea` builds and injects in one step. */
const MIN_NODE: [number, number] = [25, 5]
/** Longest a single build step (bundle, strip, inject) may take. */
const STEP_TIMEOUT_MS = 300_000
/** Largest output a build step may print before it is cut off. */
const STEP_MAX_BUFFER = 16 * 1024 * 1024

/**
 * The native addons embedded as SEA assets, keyed by their path from the repo root: the keys are
 * the asset names node/erasure.ts and fuse/addon.ts ask for. `required`: the build fails without
 * it; otherwise the binary runs without it (erasure falls back to TypeScript).
 */
const ADDONS: ReadonlyArray<{ key: string, required: boolean, hint: string }> = [
  { key: 'node/data/native/build/erasure.node', required: false, hint: 'bash node/data/native/build.sh (needs libisal-dev)' },
  { key: 'fuse/build/fuse.node', required: true, hint: 'bash fuse/build.sh (needs libfuse3-dev)' }
]

/** The binary could not be built; the message says why and what to do. */
export class BuildError extends Error {
  static override readonly name = 'BuildError'
  override readonly name = 'BuildError'
}

export interface BuildOptions {
  /** Output file (default: DEFAULT_OUT under the repo root). */
  out?: string
  /** esbuild executable (default: findEsbuild()). */
  esbuild?: string
  /** Strip symbols and debug info from the base Node (default true; ~30 MB smaller). */
  strip?: boolean
  signal?: AbortSignal
}

export interface BuildResult {
  out: string
  /** Size of the binary. */
  bytes: number
  /** Size of the bundled script inside it. */
  bundleBytes: number
  /** Wall time of the whole build. */
  ms: number
  /** Asset keys embedded. */
  assets: string[]
  /** Optional addons that were not built, so not embedded. */
  missing: string[]
  /** Whether the base Node was stripped. */
  stripped: boolean
}

async function exists (path: string): Promise<boolean> {
  return await access(path).then(() => true, () => false)
}

/** The esbuild executable: $ESBUILD, else node_modules/.bin/esbuild; undefined when neither exists. */
export async function findEsbuild (): Promise<string | undefined> {
  for (const p of [process.env.ESBUILD, join(ROOT, 'node_modules', '.bin', 'esbuild')]) {
    if (p !== undefined && p !== '' && await exists(p)) return p
  }
  return undefined
}

async function run (file: string, args: string[], what: string, signal?: AbortSignal): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { cwd: ROOT, signal, timeout: STEP_TIMEOUT_MS, maxBuffer: STEP_MAX_BUFFER }, (err, stdout, stderr) => {
      if (err != null) reject(new BuildError(`${what} failed: ${String(stderr).trim() || err.message}`))
      else resolve(String(stdout) + String(stderr))
    })
  })
}

function checkNode (): void {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    throw new BuildError(`node --build-sea needs Node >= ${MIN_NODE.join('.')}, this is ${process.versions.node}: run through npm/npx (the pinned Node)`)
  }
}

/**
 * The bundle runs as an ES module inside the binary: `require` (used by bundled CommonJS
 * packages for Node built-ins) is made from import.meta.url, which there is the executable.
 */
const BANNER = "import { createRequire as __darkfsCreateRequire } from 'node:module'; const require = __darkfsCreateRequire(import.meta.url);"

/** Builds the binary; throws BuildError with the reason when it cannot. */
export async function buildBinary (opts: BuildOptions = {}): Promise<BuildResult> {
  const started = performance.now()
  checkNode()
  const esbuild = opts.esbuild ?? await findEsbuild()
  if (esbuild === undefined) {
    throw new BuildError(`esbuild is not installed: add esbuild@${ESBUILD_VERSION} as a devDependency (or set ESBUILD=/path/to/esbuild)`)
  }
  const out = resolve(ROOT, opts.out ?? DEFAULT_OUT)
  const assets: Record<string, string> = {}
  const missing: string[] = []
  for (const a of ADDONS) {
    const file = join(ROOT, a.key)
    if (await exists(file)) assets[a.key] = file
    else if (a.required) throw new BuildError(`${a.key} is not built: run ${a.hint}`)
    else missing.push(a.key)
  }

  // the dashboard's files (node/api/dashboard.ts reads them from the assets inside the binary)
  for (const name of Object.keys(DASHBOARD_FILES)) assets[`${DASHBOARD_DIR}/${name}`] = join(ROOT, DASHBOARD_DIR, name)

  const work = await mkdtemp(join(tmpdir(), 'darkfs-build-'))
  try {
    const bundle = join(work, 'darkfs.mjs')
    await run(esbuild, [
      join(ROOT, ENTRY), '--bundle', '--platform=node', '--format=esm', '--target=node26',
      `--outfile=${bundle}`, `--banner:js=${BANNER}`, '--log-level=error'
    ], 'esbuild', opts.signal)

    let base = process.execPath
    let stripped = false
    if (opts.strip !== false) {
      const copy = join(work, 'node')
      await copyFile(process.execPath, copy)
      // without the strip tool the unstripped Node serves: bigger, same behaviour
      stripped = await run('strip', ['--strip-all', copy], 'strip', opts.signal).then(() => true, () => false)
      base = copy
    }

    await mkdir(dirname(out), { recursive: true })
    const partial = `${out}.partial`
    const config = join(work, 'sea-config.json')
    await writeFile(config, JSON.stringify({
      main: bundle,
      mainFormat: 'module',
      executable: base,
      output: partial,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: true, // V8 code cache of the bundle: each CLI command starts ~0.1 s sooner
      // the binary is darkfs, not node: NODE_OPTIONS must not change how it runs
      execArgvExtension: 'none',
      assets
    }, null, 2))
    try {
      await run(process.execPath, ['--build-sea', config], 'node --build-sea', opts.signal)
      await chmod(partial, 0o755)
      await rename(partial, out)
    } finally {
      await rm(partial, { force: true })
    }
    return {
      out,
      bytes: (await stat(out)).size,
      bundleBytes: (await stat(bundle)).size,
      ms: Math.round(performance.now() - started),
      assets: Object.keys(assets),
      missing,
      stripped
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

function parseArgs (argv: string[]): BuildOptions {
  const opts: BuildOptions = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--out' && argv[i + 1] !== undefined) opts.out = resolve(argv[++i])
    else if (a === '--no-strip') opts.strip = false
    else throw new BuildError(`unknown argument ${a} (usage: node scripts/build-bin.ts [--out FILE] [--no-strip])`)
  }
  return opts
}

if (import.meta.main === true) {
  try {
    const r = await buildBinary(parseArgs(process.argv.slice(2)))
    const mib = (n: number): string => (n / (1 << 20)).toFixed(1) + ' MiB'
    process.stdout.write(`built ${r.out}: ${mib(r.bytes)} (bundle ${mib(r.bundleBytes)}${r.stripped ? '' : ', base Node not stripped'}) in ${(r.ms / 1000).toFixed(1)} s\n`)
    process.stdout.write(`embedded ${r.assets.join(', ') || 'no addons'}\n`)
    for (const m of r.missing) process.stdout.write(`not embedded (not built): ${m}\n`)
  } catch (err: any) {
    process.stderr.write(`build-bin: ${String(err?.message ?? err)}\n`)
    process.exitCode = 1
  }
}
