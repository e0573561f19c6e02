// Anti-entropy rounds over a table every host keeps alike (the member table, member-service.ts;
// the keeper counts, keeper/kept-service.ts): every `everyMs` one connected peer (in turn) is
// asked for its table's digest, and its table is pulled only when the digests still differ
// `recheckMs` later (a record still spreading by gossip makes two tables differ for a moment,
// and a pull moves the whole table). One round at a time.

export interface AntiEntropy {
  /** The connected peers, asked in turn. */
  peers: () => Array<{ id: string }>
  everyMs: number
  recheckMs: number
  /** Whether the peer's table's digest differs from this host's (one call). */
  differs: (peer: string) => Promise<boolean>
  /** Pull the peer's table into this host's. */
  pull: (peer: string) => Promise<unknown>
  /** A round ended with the tables alike (now or at the recheck), or with the peer's table pulled. */
  synced?: () => void
  /** A round failed (the peer did not answer, ...). */
  failed: (peer: string, err: unknown) => void
}

/** Start the rounds; the function returned stops them. */
export function startAntiEntropy (a: AntiEntropy): () => void {
  let stopped = false
  let turn = 0
  let syncing = false
  let recheck: ReturnType<typeof setTimeout> | undefined
  const round = async (peer: string): Promise<void> => {
    if (await a.differs(peer)) {
      await new Promise<void>(resolve => { recheck = setTimeout(resolve, a.recheckMs); recheck.unref() })
      if (stopped) return
      if (await a.differs(peer)) await a.pull(peer)
    }
    if (!stopped) a.synced?.()
  }
  const timer = setInterval(() => {
    const peers = a.peers()
    if (stopped || syncing || peers.length === 0) return
    const peer = peers[turn++ % peers.length].id
    syncing = true
    round(peer).catch((err: unknown) => { a.failed(peer, err) }).finally(() => { syncing = false })
  }, a.everyMs)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
    clearTimeout(recheck)
  }
}
