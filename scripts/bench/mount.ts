// Benchmark of the FUSE mount against the local disk, in the same run: sequential write and
// read in 1 MiB blocks (DARKFS_BENCH_MOUNT_MIB, default 1024), random 4 KiB reads and writes,
// and create / ls -l / delete of 5,000 files of 4 KiB in one directory, serially and by 8
// writers at once (whose commits share the op log's fsyncs); then the metadata figures of
// _mount-meta.ts: 5,000 creates, `ls -l` and `rm -r` of them, and `tar x` of /usr/include (then
// its `rm -r`) from an archive made on the local disk first (`meta.<figure>.mount` printed beside
// `meta.<figure>.local`; no tar figures where /usr/include is missing). The mount serves the
// real Volume in a temp data dir when node/index.ts exports it, else the in-memory test
// volume (then reported as `mount.volume: memory`). The I/O runs in a child process
// (_mount-io.ts): this process serves the mount and must not block on it.
import { mkdtemp, rm, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mount } from '../../fuse/index.ts'
import type { VolumeApi } from '../../node/index.ts'

const exec = promisify(execFile)
const here = dirname(fileURLToPath(import.meta.url))
/** Default size of the sequential test file, MiB. */
const DEFAULT_MIB = 1024
/** Cap for the in-memory run (it holds the file in RAM). */
const MEMORY_MIB_MAX = 256

/** Files of the metadata figures. */
const META_FILES = 5000
/** The tree extracted by the tar figures. */
const TAR_SOURCE = '/usr/include'

/** Run _mount-meta.ts on `dir` in a child process; its figures. */
export async function meta (dir: string, files: number, tarball: string): Promise<Record<string, number>> {
  const { stdout } = await exec(process.execPath, [join(here, '_mount-meta.ts'), dir, String(files), tarball], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout)
}

/** Archive TAR_SOURCE into `base` (local disk); '-' when there is none. */
async function tarball (base: string): Promise<string> {
  const file = join(base, 'usr-include.tar')
  try {
    await exec('tar', ['cf', file, '-C', dirname(TAR_SOURCE), basename(TAR_SOURCE)], { maxBuffer: 1 << 20 })
    return file
  } catch (err: any) {
    process.stderr.write(`bench mount: no tar figures (${String(err?.message ?? err).split('\n')[0]})\n`)
    return '-'
  }
}

/** Run the workloads of _mount-io.ts on `dir` in a child process; its figures. */
export async function io (dir: string, mib: number, files = 5000): Promise<Record<string, number>> {
  const { stdout } = await exec(process.execPath, [join(here, '_mount-io.ts'), dir, String(mib), String(files)], { maxBuffer: 1 << 20, env: { ...process.env, UV_THREADPOOL_SIZE: '16' } })
  return JSON.parse(stdout)
}

async function openVolume (dataDir: string): Promise<{ volume: VolumeApi & { close?: () => Promise<void> }, kind: string }> {
  const door: any = await import('../../node/index.ts')
  if (typeof door.Volume?.open === 'function') return { volume: await door.Volume.open({ dir: dataDir }), kind: 'real' }
  const { createMemoryVolume } = await import('../../harness/memory-volume.ts')
  return { volume: createMemoryVolume(), kind: 'memory' }
}

export async function run (): Promise<Record<string, number | string>> {
  const mib = Number(process.env.DARKFS_BENCH_MOUNT_MIB ?? DEFAULT_MIB)
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-mount-'))
  const figures: Record<string, number | string> = {}
  try {
    await chmod(base, 0o755)
    const local = await mkdtemp(join(base, 'local-'))
    for (const [k, v] of Object.entries(await io(local, mib))) figures[`local.${k}`] = v
    const tar = await tarball(base)
    const localMeta = await meta(local, META_FILES, tar)
    let mountMeta: Record<string, number> = {}

    const { volume, kind } = await openVolume(await mkdtemp(join(base, 'data-')))
    const dir = await mkdtemp(join(base, 'mnt-'))
    const m = await mount(volume, dir)
    try {
      figures['mount.volume'] = kind
      for (const [k, v] of Object.entries(await io(dir, mib))) figures[`mount.${k}`] = v
      mountMeta = await meta(dir, META_FILES, tar)
    } finally {
      await m.unmount()
      await volume.close?.()
    }
    figures['mount.seq.MiB'] = mib
    // each metadata figure of the mount beside the local disk's
    for (const k of Object.keys(localMeta)) {
      figures[`meta.${k}.local`] = localMeta[k]
      if (k in mountMeta) figures[`meta.${k}.mount`] = mountMeta[k]
    }

    // the same through a mount over the in-memory test volume: the FUSE path's own cost
    const { createMemoryVolume } = await import('../../harness/memory-volume.ts')
    const memDir = await mkdtemp(join(base, 'mnt-mem-'))
    const mm = await mount(createMemoryVolume(), memDir)
    try {
      const memMib = Math.min(mib, MEMORY_MIB_MAX)
      for (const [k, v] of Object.entries(await io(memDir, memMib))) figures[`mount-memory.${k}`] = v
      figures['mount-memory.seq.MiB'] = memMib
    } finally {
      await mm.unmount()
    }
  } finally {
    await rm(base, { recursive: true, force: true })
  }
  return figures
}
