// Test Volumes whose file handles misbehave on purpose (a read held until the test lets it go,
// one that fails, an fsync as slow as a bad disk): the handles `volume.open` gives for the paths
// chosen get the methods `change` returns over their own.
import type { FileHandle } from '../../node/index.ts'

export function wrapHandles (volume: { open: (...args: any[]) => Promise<FileHandle> }, which: (path: string) => boolean, change: (fh: FileHandle) => Partial<FileHandle>): void {
  const open = volume.open.bind(volume)
  volume.open = async (...args: any[]) => {
    const fh = await open(...args)
    if (!which(fh.path)) return fh
    // path and ino named again: a handle's own may be getters, which a spread does not copy
    return { ...fh, path: fh.path, ino: fh.ino, ...change(fh) }
  }
}
