// CIDR ranges for `allowFrom` (accept peers only from the mesh's subnets): IPv4, IPv6 and
// IPv4-mapped IPv6 addresses. Pure functions.
import { UsageError } from '../errors.ts'

export interface Cidr { bytes: Uint8Array, bits: number }

/** '10.0.0.0/8', 'fd00::/8', or a bare address (a /32 or /128). */
export function parseCidr (text: string): Cidr {
  const [ip, bitsText] = text.split('/')
  const bytes = ipBytes(ip)
  const max = bytes?.length === 4 ? 32 : 128
  const bits = bitsText === undefined ? max : Number(bitsText)
  if (bytes === undefined || !Number.isInteger(bits) || bits < 0 || bits > max) {
    throw new UsageError(`not a CIDR range: ${JSON.stringify(text)} (expected e.g. 10.0.0.0/8 or fd00::/8)`)
  }
  return { bytes, bits }
}

/** Whether an IP (v4 or v6) lies in a range; IPv4-mapped IPv6 counts as IPv4. */
export function cidrContains (range: Cidr, ip: string): boolean {
  let bytes = ipBytes(ip)
  if (bytes === undefined) return false
  if (bytes.length === 16 && range.bytes.length === 4 && bytes.slice(0, 10).every(b => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) bytes = bytes.slice(12)
  if (bytes.length !== range.bytes.length) return false
  for (let bit = 0; bit < range.bits; bit++) {
    const mask = 0x80 >> (bit % 8)
    if ((bytes[bit >> 3] & mask) !== (range.bytes[bit >> 3] & mask)) return false
  }
  return true
}

function ipBytes (ip: string): Uint8Array | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const parts = ip.split('.').map(Number)
    return parts.every(p => p <= 255) ? new Uint8Array(parts) : undefined
  }
  if (!ip.includes(':')) return undefined
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip)
  if (dotted !== null) {
    // an embedded IPv4 tail (::ffff:10.0.0.1) is two 16-bit groups
    const v4 = ipBytes(dotted[2])
    if (v4 === undefined) return undefined
    const hex = (a: number, b: number): string => ((a << 8) | b).toString(16)
    return ipBytes(`${dotted[1]}${hex(v4[0], v4[1])}:${hex(v4[2], v4[3])}`)
  }
  const [head, tail, ...rest] = ip.split('::')
  if (rest.length > 0) return undefined
  const groups = (s: string | undefined): number[] | undefined => {
    if (s === undefined || s === '') return []
    const out: number[] = []
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const h = groups(head)
  const t = groups(tail)
  if (h === undefined || t === undefined) return undefined
  const fill = tail === undefined ? 0 : 8 - h.length - t.length
  if (fill < 0 || (tail === undefined && h.length !== 8)) return undefined
  const all = [...h, ...new Array(fill).fill(0), ...t]
  const bytes = new Uint8Array(16)
  all.forEach((g, i) => { bytes[2 * i] = g >> 8; bytes[2 * i + 1] = g & 0xff })
  return bytes
}
