// Loading the libfuse binding (fuse/build/fuse.node). From the sources it is the file beside
// them, loaded with require. Inside the single executable built by scripts/build-bin.ts there are
// no files beside the code: the addon is an embedded asset, named by its path from the repo root,
// written to a private temp dir, process.dlopen()ed and deleted (the library stays mapped).
// A temp dir on a noexec filesystem (hardened hosts mount /tmp so) cannot be dlopen()ed from,
// so the next candidate dir is tried: the binary's own dir, $XDG_RUNTIME_DIR, ~/.cache.
//
// Synchronous like require() of a .node: it runs once, on the first mount, before the mount
// serves any request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { getRawAsset, isSea } from 'node:sea'

/** The addon path, relative to this file. */
const ADDON_PATH = './build/fuse.node'
/** The addon's asset name inside the single executable (scripts/build-bin.ts embeds it). */
const ADDON_ASSET = 'fuse/build/fuse.node'
/** dlopen() failures another dir may avoid: the file's filesystem does not allow executables. */
const NOEXEC = /failed to map segment|operation not permitted/i

/** Where the addon may be written before dlopen(), best first. */
function candidateDirs (): string[] {
  const dirs = [tmpdir(), dirname(process.execPath), process.env.XDG_RUNTIME_DIR, join(homedir(), '.cache')]
  return [...new Set(dirs.filter((d): d is string => d !== undefined && d !== ''))]
}

/** Writes the embedded addon under `parent`, loads it, deletes the file. */
function loadFrom (parent: string): unknown {
  const dir = mkdtempSync(join(parent, 'darkfs-addon-'))
  try {
    const file = join(dir, 'fuse.node')
    writeFileSync(file, new Uint8Array(getRawAsset(ADDON_ASSET)), { mode: 0o700 })
    const module = { exports: {} }
    process.dlopen(module, file)
    return module.exports
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The binding's exports; throws when the addon is absent or does not load. */
export function requireBinding (): unknown {
  if (!isSea()) return createRequire(import.meta.url)(ADDON_PATH)
  const tried: string[] = []
  for (const parent of candidateDirs()) {
    try {
      return loadFrom(parent)
    } catch (err: any) {
      tried.push(`${parent}: ${String(err?.message ?? err)}`)
      // a dir we cannot write to, or a noexec one: try the next; other dlopen failures are final
      if (err?.code === 'ERR_DLOPEN_FAILED' && !NOEXEC.test(String(err?.message))) break
    }
  }
  throw new Error(`cannot load the embedded ${ADDON_ASSET} (${tried.join('; ')}); point TMPDIR at a directory that allows executables`)
}
