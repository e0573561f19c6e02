// A version of this host in flight: a commit's durable log append written, its fsync seen back only
// once released (a commit stamped, not yet applied). Shared by the tests of writes over a version
// that came while a file was open (tree-cut, own-extents-span, lay-under-*, whole-cut-inflight).
import type { Tree } from '../../node/tree/index.ts'
import type { Volume } from '../../node/index.ts'

type Log = { append: (records: Uint8Array[], d?: string) => Promise<void> }

export interface HeldSync {
  /** Lets the held append's commit see its fsync back (harmless before it is reached, and again). */
  release: () => void
  /** Resolves once the held append is written. */
  held: Promise<void>
  /** Puts the log's own append back (when none was held yet). */
  restore: () => void
}

/**
 * Hold `tree`'s next durable log append (the next one `which` picks, when given; others go on):
 * it is written, but the commit sees its fsync back only once `release()` is called. Later
 * appends are not held.
 */
export function holdNextSync (tree: Tree, which?: (records: Uint8Array[]) => boolean): HeldSync {
  const log = (tree as unknown as { log: Log }).log
  const append = log.append.bind(log)
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let reached!: () => void
  const held = new Promise<void>(resolve => { reached = resolve })
  log.append = async (records, d) => {
    if (which !== undefined && !which(records)) return await append(records, d)
    log.append = append
    const p = append(records, d)
    reached()
    await p
    await gate
  }
  return { release, held, restore: () => { log.append = append } }
}

/**
 * A version of this host coming while ranges are written: writes `coming` to `path` of `vol`
 * (the append picked by `which`, else the next, held), opens `path` r+ once that is written and
 * runs `write` on the handle, then releases the version, awaits its writeFile and closes the
 * handle. Whatever throws, the log's append is put back and the writeFile released and awaited.
 */
export async function writeWhileComing (vol: Volume, path: string, coming: Uint8Array, write: (fh: Awaited<ReturnType<Volume['open']>>) => Promise<void>, which?: (records: Uint8Array[]) => boolean): Promise<void> {
  const hold = holdNextSync(vol.tree, which)
  let written: Promise<void> | undefined
  try {
    written = vol.writeFile(path, coming)
    await hold.held
    const fh = await vol.open(path, 'r+')
    await write(fh)
    hold.release()
    await written
    await fh.close()
  } finally {
    hold.restore()
    hold.release()
    await written
  }
}
