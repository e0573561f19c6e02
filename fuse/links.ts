// Names of hard-linked files. libfuse's path-based API gives every name its own kernel inode,
// so when one name's link count changes (link, unlink, rename over) the others' cached
// attributes go stale; the mount remembers the names it has seen of files with nlink > 1 and
// asks the kernel to refresh them.
import type { Stats } from '../node/index.ts'

/** Most names remembered; past it the memory starts over (only cache freshness is lost). */
export const LINK_NAMES_MAX = 100_000

export interface LinkNames {
  /** Record `path` if it names a hard-linked file. */
  note: (path: string, st: Stats) => void
  /** The other remembered names of the file at `path`. */
  others: (path: string) => string[]
  /** The remembered names of inode `ino` (none for a file never seen with nlink > 1). */
  names: (ino: number) => string[]
  /** `path` is gone (unlinked or renamed away). */
  forget: (path: string) => void
  /** The directory `from` is now `to`: the names remembered below it move with it. */
  moveDir: (from: string, to: string) => void
}

export function createLinkNames (): LinkNames {
  const byPath = new Map<string, number>()
  const byIno = new Map<number, Set<string>>()
  return {
    note (path, st) {
      if (st.kind === 'dir') return
      if (st.nlink < 2) {
        // the file has one name now (its others removed, here or by another host): the names
        // remembered of it are gone but this one, and a write through it refreshes none; a name
        // now of another file is forgotten alone (review40d)
        const ino = byPath.get(path)
        if (ino === st.ino) {
          for (const p of byIno.get(ino) ?? []) byPath.delete(p)
          byIno.delete(ino)
        } else if (ino !== undefined) {
          this.forget(path)
        }
        return
      }
      if (byPath.get(path) === st.ino) return
      if (byPath.size >= LINK_NAMES_MAX) { byPath.clear(); byIno.clear() }
      this.forget(path)
      byPath.set(path, st.ino)
      let names = byIno.get(st.ino)
      if (names === undefined) byIno.set(st.ino, names = new Set())
      names.add(path)
    },
    others (path) {
      const ino = byPath.get(path)
      if (ino === undefined) return []
      return [...byIno.get(ino) ?? []].filter(p => p !== path)
    },
    names (ino) {
      const names = byIno.get(ino)
      return names === undefined ? [] : [...names]
    },
    forget (path) {
      const ino = byPath.get(path)
      if (ino === undefined) return
      byPath.delete(path)
      const names = byIno.get(ino)
      names?.delete(path)
      if (names?.size === 0) byIno.delete(ino)
    },
    moveDir (from, to) {
      const prefix = from + '/'
      // one pass over at most LINK_NAMES_MAX names, and only for a directory that holds one
      const moved = [...byPath].filter(([p]) => p.startsWith(prefix))
      for (const [p, ino] of moved) {
        this.forget(p)
        const q = to + p.slice(from.length)
        this.forget(q)
        byPath.set(q, ino)
        let names = byIno.get(ino)
        if (names === undefined) byIno.set(ino, names = new Set())
        names.add(q)
      }
    }
  }
}
