// Why a host could not listen (issue 17): libp2p reports a failed listen as one
// UnsupportedListenAddressesError whose message talks of its own settings
// (`transportManager.faultTolerance`), and keeps the reasons per address to itself. This finds
// the reason the user can act on by trying each TCP address again with node:net: a port in use
// becomes "port 4001 is in use (...)"; anything else names the addresses and the system's reason.
import { createServer } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { ListenError } from '../errors.ts'

/** Name of libp2p's error for listen addresses that failed (transport-manager.ts). */
const LIBP2P_LISTEN_FAILED = 'UnsupportedListenAddressesError'

/** Whether `err` is libp2p failing to listen on its addresses. */
export function isListenFailure (err: unknown): boolean {
  return (err as Error | undefined)?.name === LIBP2P_LISTEN_FAILED
}

/**
 * The ListenError for a failed listen on `addresses` (multiaddr strings): the first TCP address
 * whose port is taken, or whose host address this machine lacks; otherwise a ListenError naming
 * them all, with libp2p's error as its cause.
 */
export async function listenError (addresses: string[], cause: unknown): Promise<ListenError> {
  for (const a of addresses) {
    let host: string
    let port: number
    try {
      const [ip, tcp] = multiaddr(a).getComponents()
      if (!['ip4', 'ip6'].includes(ip?.name) || tcp?.name !== 'tcp' || ip.value === undefined) continue
      host = ip.value
      port = Number(tcp.value)
    } catch { continue } // not a multiaddr (libp2p's error below names it)
    const code = await tryListen(host, port)
    if (code === 'EADDRINUSE') return new ListenError(`port ${port} is in use (listening on ${a}: another darkfs host or program has it; choose another with --listen)`, a, port)
    if (code === 'EADDRNOTAVAIL') return new ListenError(`cannot listen on ${a}: this machine has no address ${host}`, a)
    if (code === 'EACCES') return new ListenError(`cannot listen on ${a}: port ${port} needs privileges (choose one above 1023 with --listen)`, a, port)
  }
  const err = new ListenError(`cannot listen on ${addresses.join(', ')}`, addresses.join(','))
  err.cause = cause
  return err
}

/** Listen on host:port and close again: the error code, or undefined when it could listen. */
async function tryListen (host: string, port: number): Promise<string | undefined> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? 'EIO') })
    server.listen({ host, port, exclusive: true }, () => { server.close(() => { resolve(undefined) }) })
  })
}
