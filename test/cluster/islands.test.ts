// island34 (#14): at a tiny --max-connections the hosts' wanted connections alone must join them
// all. Before kad.ts neighbours() wanted the ring successor first, a host at bound 3 wanted only
// the closest member of its farthest k-bucket, and for many id sets those wants split the hosts
// into islands: once the other connections were trimmed (member-pull.test.ts, under load: 4 of
// 12 hosts connected only to each other for 12 minutes) nothing ever dialled across. Here the
// hosts' ids are drawn so that rule splits them, and the connections the live hosts want and keep
// must join them all.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { until } from '../../harness/cluster.ts'
import { createHost, createNetworkKey, neighbourCount, neighbours, peerKadId } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'

const HOSTS = 8
const BOUND = 3

/** The closest member of the farthest non-empty k-bucket: the one neighbour a host wanted at bound 3 before island34. */
function farthestBucketClosest (self: string, members: string[]): string {
  const me = peerKadId(self)
  const prefix = (id: Uint8Array): number => {
    for (let i = 0; i < me.length; i++) if ((me[i] ^ id[i]) !== 0) return i * 8 + Math.clz32(me[i] ^ id[i]) - 24
    return me.length * 8
  }
  const others = members.filter(m => m !== self)
  const far = Math.min(...others.map(m => prefix(peerKadId(m))))
  const distance = (m: string): string => Buffer.from(peerKadId(m).map((b, i) => b ^ me[i])).toString('hex')
  return others.filter(m => prefix(peerKadId(m)) === far).sort((a, b) => distance(a) < distance(b) ? -1 : 1)[0]
}

/** Connected components of `members` joined by `edges`. */
function components (members: string[], edges: Array<[string, string]>): number {
  const parent = new Map(members.map(m => [m, m]))
  const find = (m: string): string => { while (parent.get(m) !== m) m = parent.get(m)!; return m }
  for (const [a, b] of edges) parent.set(find(a), find(b))
  return new Set(members.map(find)).size
}

describe(`islands (${HOSTS} hosts, --max-connections ${BOUND}): the wanted connections keep one network (island34)`, function () {
  this.timeout(180_000)
  const hosts: Host[] = []
  after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

  it('hosts whose farthest-bucket neighbours would split them want and keep connections that join them all', async () => {
    // ids for which the old one-neighbour rule makes islands
    let keys: PrivateKey[] = []
    for (let tries = 0; ; tries++) {
      assert.ok(tries < 200, 'no id set split by the farthest-bucket rule in 200 draws')
      keys = await Promise.all(Array.from({ length: HOSTS }, async () => await generateKeyPair('Ed25519')))
      const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
      if (components(ids, ids.map(id => [id, farthestBucketClosest(id, ids)])) > 1) break
    }
    const networkKey = createNetworkKey()
    const addr = (): string => `/memory/darkfs-islands-${randomBytes(6).toString('hex')}`
    const seed = await createHost({ privateKey: keys[0], networkKey, listen: [addr()], join: [], maxConnections: BOUND })
    hosts.push(seed)
    for (const privateKey of keys.slice(1)) hosts.push(await createHost({ privateKey, networkKey, listen: [addr()], join: [seed.addresses()[0]], maxConnections: BOUND }))
    const ids = hosts.map(h => h.peerId)
    const want = new Map(ids.map(id => [id, neighbours(id, ids, neighbourCount(BOUND))]))
    // every host knows every member and chose its neighbours among them all
    await until('every host chose its neighbours among all members', () =>
      hosts.every(h => h.beyondFullMesh() && h.neighbours().slice().sort().join() === want.get(h.peerId)!.slice().sort().join()), 90_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${hosts.map(h => `${h.peerId.slice(-6)} chose ${h.neighbours().map(p => p.slice(-6)).join(',')} want ${want.get(h.peerId)!.map(p => p.slice(-6)).join(',')}`).join('; ')}`) })
    // the connections the hosts want, open at both ends, join them all (other connections, the
    // DHT's and the joins', bridge islands by chance only: the trim closes them under load)
    const wanted = (a: string, b: string): boolean => want.get(a)!.includes(b) || want.get(b)!.includes(a)
    const edges = (): Array<[string, string]> => hosts.flatMap(h => h.peers().filter(p => wanted(h.peerId, p.id)).map(p => [h.peerId, p.id] as [string, string]))
    const open = (a: string, b: string): boolean => hosts.find(h => h.peerId === a)!.peers().some(p => p.id === b)
    await until('the wanted connections open and joining every host, each host within its bound', () =>
      hosts.every(h => h.peers().length <= BOUND) && ids.every(a => want.get(a)!.every(b => open(a, b) && open(b, a))) && components(ids, edges()) === 1, 60_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${components(ids, edges())} islands; ${hosts.map(h => `${h.peerId.slice(-6)}: ${h.peers().map(p => p.id.slice(-6)).join(',')}`).join('; ')}`) })
  })
})
