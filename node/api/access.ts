// Who may reach the control API over TCP (`darkfs up --api ADDR`): only on a loopback, private
// or VPN address (never a public one: the API can read and delete every file), and only with
// the data dir's bearer token.
import { randomBytes } from 'node:crypto'
import { readFile, writeFile, chmod } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { UsageError } from '../errors.ts'

/** The bearer token's file in the data dir (mode 0600). */
export const API_TOKEN_FILE = 'api.token'
/** Random bytes in a token (hex in the file). */
export const API_TOKEN_BYTES = 32

/** IPv4 ranges --api accepts: loopback, RFC 1918, CGNAT (Tailscale, Headscale), link-local. */
const V4_RANGES: Array<[string, number]> = [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16]]
const ALLOWED = '127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, fe80::/10'

function v4 (a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0)
}

/** Whether an IP literal is loopback, private or a VPN's (the ranges of ALLOWED). */
export function isPrivateAddress (ip: string): boolean {
  if (isIP(ip) === 4) {
    const n = v4(ip)
    return V4_RANGES.some(([base, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(v4(base) / 2 ** (32 - bits)))
  }
  if (isIP(ip) === 6) {
    const a = ip.toLowerCase()
    if (a === '::1') return true
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
    if (mapped !== null) return isPrivateAddress(mapped[1])
    const first = parseInt(a.split(':')[0] === '' ? '0' : a.split(':')[0], 16)
    return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80
  }
  return false
}

/** `--api HOST:PORT` (`[v6]:PORT`; `localhost` is 127.0.0.1): refused unless private. */
export function parseApiAddress (text: string): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  if (m === null) throw new UsageError(`--api takes HOST:PORT (e.g. 127.0.0.1:8790 or [::1]:8790), got ${JSON.stringify(text)}`)
  let host = m[1] ?? m[2]
  if (host === 'localhost') host = '127.0.0.1'
  const port = Number(m[3])
  if (port > 65535) throw new UsageError(`--api: port ${port} is over 65535`)
  if (isIP(host) === 0) throw new UsageError(`--api takes an IP address, not a name: ${JSON.stringify(host)}`)
  if (!isPrivateAddress(host)) throw new UsageError(`--api ${host}: not a loopback, private or VPN address; the control API can read and delete every file, so it listens only on ${ALLOWED}`)
  return { host, port }
}

/** The data dir's API token: read, or made (mode 0600) if it has none yet. */
export async function apiToken (dir: string): Promise<string> {
  const file = join(dir, API_TOKEN_FILE)
  try {
    const token = (await readFile(file, 'utf8')).trim()
    if (token.length >= 16) return token
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  const token = randomBytes(API_TOKEN_BYTES).toString('hex')
  // 'w' with mode only applies to a new file: chmod covers one left with other bits
  await writeFile(file, token + '\n', { mode: 0o600 })
  await chmod(file, 0o600)
  return token
}
