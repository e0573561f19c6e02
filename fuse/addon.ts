// Loading the libfuse binding (fuse/build/fuse.node). From the sources it is the file beside
// them, loaded with require. Inside the single executable built by scripts/build-bin.ts there are
// no files beside the code: the addon is an embedded asset, named by its path from the repo root,
// written to a private temp dir, process.dlopen()ed and deleted (the library stays mapped).
//
// Synchronous like require() of a .node: it runs once, on the first mount, before the mount
// serves any request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getRawAsset, isSea } from 'node:sea'

/** The addon path, relative to this file. */
const ADDON_PATH = './build/fuse.node'
/** The addon's asset name inside the single executable (scripts/build-bin.ts embeds it). */
const ADDON_ASSET = 'fuse/build/fuse.node'

/** The binding's exports; throws when the addon is absent or does not load. */
export function requireBinding (): unknown {
  if (!isSea()) return createRequire(import.meta.url)(ADDON_PATH)
  const dir = mkdtempSync(join(tmpdir(), 'darkfs-addon-'))
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
