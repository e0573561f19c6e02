// Whether this host is offline (DESIGN.md §6): it belongs to a network but reaches none of its
// peers right now. A host that has never had a peer and was never told to join one is a
// network of one, not offline. "Has had a peer" survives restarts: the first connection leaves
// a marker file in the data dir.
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '../log.ts'

const log = logger('net:presence')

/** Marker file in the data dir: this host has been connected to a peer at least once. */
export const NETWORKED_FILE = 'networked'

export interface PresenceComponents {
  /** Live peers now. */
  peers: () => unknown[]
  events: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
}

export interface PresenceInit {
  /** The data dir (the marker lives there). */
  dir: string
  /** Join addresses configured for this host: with any, it belongs to a network. */
  join?: string[]
}

export class Presence {
  private readonly c: PresenceComponents
  private readonly init: PresenceInit
  private networked = false
  /** The marker file exists. */
  private marked = false
  private started = false
  private readonly onConnect = (): void => {
    this.networked = true
    if (this.marked) return
    this.marked = true
    writeFile(join(this.init.dir, NETWORKED_FILE), '').catch((err: Error) => {
      // tried again at the next connection; until then a restart alone counts as never networked
      this.marked = false
      log.error('cannot mark %s as networked: %s', this.init.dir, err.message)
    })
  }

  constructor (components: PresenceComponents, init: PresenceInit) {
    this.c = components
    this.init = init
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    // no mark (ENOENT, or unreadable) means this host was never networked
    this.marked = await access(join(this.init.dir, NETWORKED_FILE)).then(() => true, () => false)
    this.networked ||= this.marked || (this.init.join ?? []).length > 0
    this.c.events.addEventListener('peer:connect', this.onConnect)
    if (this.c.peers().length > 0) this.onConnect()
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    this.c.events.removeEventListener('peer:connect', this.onConnect)
  }

  /** True once this host belongs to a network (it was told to join one, or had a peer once). */
  belongs (): boolean {
    return this.networked
  }

  /** True while this host belongs to a network and reaches none of its peers. */
  offline (): boolean {
    return this.networked && this.c.peers().length === 0
  }
}
