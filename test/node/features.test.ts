// Features and the multi-extent gate (node/net/features.ts; issue 15 item 1): a feature list is
// refused with a clear error when malformed; a host announces its features as identify protocols
// (host.ts), which peers read without any change to the member record older hosts decode
// strictly; the FeatureBook says a feature is supported by all only when every member and
// connected peer is known to support it, and never while this host may not know every member.
// With real libp2p hosts and a real Volume: while one member does not announce 'multiext/1' (a
// host of an older version), an fsync of several ranges is one single-extent op per range; once
// that member comes back announcing it, the same fsync is one multi-extent op, and the file
// reads back as written either way. (The seed there pulls a table from a joiner that connected
// before it served one: member-service.ts tries such a pull again, else the seed would not know
// its table complete for a whole anti-entropy round.)
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import {
  FEATURES, FEATURE_MULTIEXT, FeatureBook, FeatureListError, MAX_FEATURES, MAX_FEATURE_CHARS,
  featureProtocol, featuresOfProtocols, parseFeatures
} from '../../node/net/features.ts'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { MAX_MEMBER_ADDRS, MAX_MEMBER_ADDR_CHARS, MAX_MEMBER_MESSAGE_BYTES, MemberTable } from '../../node/net/members.ts'
import { startMemberService } from '../../node/net/member-service.ts'
import type { MemberService } from '../../node/net/member-service.ts'
import { signerFor, verify } from '../../node/net/signing.ts'
import { MAX_OP_EXTENTS } from '../../node/tree/index.ts'
import type { OpBody } from '../../node/tree/index.ts'
import { Volume, extentBodies } from '../../node/volume.ts'
import { pageSyncs } from '../helpers/page-syncs.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const memAddr = (): string => `/memory/darkfs-features-${randomBytes(6).toString('hex')}`

describe('node/net features and the multi-extent gate', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a feature list is sorted unique <name>/<version> names, bounded; anything else is refused saying why', () => {
    assert.deepEqual(parseFeatures([]), [])
    assert.deepEqual(parseFeatures(['a/1', 'multiext/1', 'multiext/2']), ['a/1', 'multiext/1', 'multiext/2'])
    assert.deepEqual(parseFeatures([...FEATURES]), [...FEATURES])
    const refused: Array<[unknown, RegExp]> = [
      ['multiext/1', /must be an array of strings/],
      [{ length: 1, 0: 'multiext/1' }, /must be an array of strings/],
      [[1], /feature 0 is not a string/],
      [['multiext/1', null], /feature 1 is not a string/],
      [['multiext'], /feature 0 is not <name>\/<version>: "multiext"/],
      [['multiext/0'], /not <name>\/<version>/],
      [['multiext/1.2'], /not <name>\/<version>/],
      [['MULTIEXT/1'], /not <name>\/<version>/],
      [['/darkfs/feature/multiext/1'], /not <name>\/<version>/],
      [['x'.repeat(MAX_FEATURE_CHARS) + '/1'], new RegExp(`feature 0 is longer than ${MAX_FEATURE_CHARS} characters`)],
      [['b/1', 'a/1'], /sorted and unique: "b\/1" before "a\/1"/],
      [['a/1', 'a/1'], /sorted and unique/],
      [Array.from({ length: MAX_FEATURES + 1 }, (_, i) => `f${String(i).padStart(3, '0')}/1`), new RegExp(`lists ${MAX_FEATURES + 1} entries, at most ${MAX_FEATURES}`)]
    ]
    for (const [v, message] of refused) {
      assert.throws(() => parseFeatures(v), (err: Error) => err instanceof FeatureListError && err.name === 'FeatureListError' && message.test(err.message), JSON.stringify(v))
    }
  })

  it('the largest record (every address, every feature, at their longest) fits a member message', async () => {
    const key = await generateKeyPair('Ed25519')
    const signer = signerFor(key)
    const features = Array.from({ length: MAX_FEATURES }, (_, i) => `${String(i).padStart(2, '0').replace(/./g, c => 'abcdefghij'[Number(c)])}${'x'.repeat(MAX_FEATURE_CHARS - 8)}/99999`)
    assert.equal(features[0].length, MAX_FEATURE_CHARS)
    const addrs = Array.from({ length: MAX_MEMBER_ADDRS }, (_, i) => `/dns4/${String(i).repeat(MAX_MEMBER_ADDR_CHARS - 15)}/tcp/65535`.slice(0, MAX_MEMBER_ADDR_CHARS))
    const self = new MemberTable({ self: signer.author, signer, verify, now: () => 2 ** 45, capacityClass: () => 255, features: () => parseFeatures(features) })
    const msg = (await self.signOwn(addrs))!
    assert.ok(msg.byteLength <= MAX_MEMBER_MESSAGE_BYTES, `${msg.byteLength} bytes`)
    assert.deepEqual(dagCbor.decode<any>(dagCbor.decode<any>(msg).r).features, features)
  })

  it('identify protocols under /darkfs/feature/ are read as features; other and malformed ones are not', () => {
    assert.equal(featureProtocol(FEATURE_MULTIEXT), '/darkfs/feature/multiext/1')
    assert.deepEqual(featuresOfProtocols(['/ipfs/id/1.0.0', '/darkfs/feature/zeta/3', '/darkfs/members/1.0.0', '/darkfs/feature/multiext/1', '/darkfs/feature/Bad', '/darkfs/feature/multiext/1']), ['multiext/1', 'zeta/3'])
    assert.deepEqual(featuresOfProtocols([]), [])
    assert.equal(featuresOfProtocols(Array.from({ length: 100 }, (_, i) => featureProtocol(`f${i}/1`))).length, MAX_FEATURES)
  })

  it('supported by all: every member and connected peer known to support it (record or identify), and only while every member can be known', () => {
    const records = new Map<string, string[]>([['b', ['multiext/1']]])
    const identified = new Map<string, string[]>([['c', ['multiext/1']], ['d', []]])
    let members = ['a', 'b', 'c']
    let connected: string[] = ['c']
    let known = true
    const book = new FeatureBook({ self: 'a', members: () => members, connected: () => connected, recordFeatures: p => records.get(p), identifyFeatures: p => identified.get(p), known: () => known })
    assert.equal(book.supportedByAll(FEATURE_MULTIEXT), true)
    assert.deepEqual(book.lacking(FEATURE_MULTIEXT), [])
    assert.equal(book.supportedByAll('other/1'), false, 'a feature this host does not understand')
    // a connected peer that is not in the table yet, announcing none (an older host)
    connected = ['c', 'd']
    assert.equal(book.supportedByAll(FEATURE_MULTIEXT), false)
    assert.deepEqual(book.lacking(FEATURE_MULTIEXT), ['d'])
    connected = ['c']
    // a member heard of on neither channel supports nothing
    members = ['a', 'b', 'c', 'e']
    assert.deepEqual(book.lacking(FEATURE_MULTIEXT), ['e'])
    records.set('e', ['multiext/1'])
    assert.equal(book.supportedByAll(FEATURE_MULTIEXT), true)
    // offline, or the table not pulled yet: not every member is known
    known = false
    assert.equal(book.supportedByAll(FEATURE_MULTIEXT), false)
    known = true
    // a host that announces fewer (a test playing an older host) supports only those
    const older = new FeatureBook({ self: 'a', own: [], members: () => ['a'], connected: () => [], recordFeatures: () => undefined, identifyFeatures: () => undefined })
    assert.equal(older.supportedByAll(FEATURE_MULTIEXT), false)
  })

  it('extentBodies: MAX_OP_EXTENTS per op, or one op per extent (the fallback), the same extents in the same order', () => {
    const piece = (i: number): any => ({ content: { inline: new Uint8Array([i]) }, at: 0, size: 1, offset: i * 10 })
    const extents = Array.from({ length: MAX_OP_EXTENTS + 2 }, (_, i) => piece(i))
    const flat = (bodies: OpBody[]): number[] => bodies.flatMap(b => { const a = b as any; return [a.offset, ...(a.more ?? []).map((x: any) => x.offset)] })
    const multi = extentBodies('i' as any, extents, 1n)
    const single = extentBodies('i' as any, extents, 1n, 1)
    assert.equal(multi.length, 2)
    assert.equal(single.length, extents.length)
    assert.ok(single.every(b => !('more' in b)), 'no `more`: what hosts of older versions take')
    assert.deepEqual(flat(single), flat(multi))
    assert.throws(() => extentBodies('i' as any, extents, 1n, 0), RangeError)
    assert.throws(() => extentBodies('i' as any, extents, 1n, MAX_OP_EXTENTS + 1), RangeError)
  })

  it('real hosts: while one member does not announce multiext/1 the writer makes one op per range; once it does, one op per fsync', async () => {
    const networkKey = createNetworkKey()
    interface Node { host: Host, table: MemberTable, service: MemberService }
    const start = async (key: PrivateKey, join: string[], features?: readonly string[]): Promise<Node> => {
      const host = await createHost({ privateKey: key, networkKey, listen: [memAddr()], join, features })
      const table = new MemberTable({ self: host.peerId, signer: signerFor(key), verify })
      const service = await startMemberService(host, table)
      const node = { host, table, service }
      t.add(async () => { await stop(node) })
      return node
    }
    const stopped = new Set<Node>()
    const stop = async (n: Node): Promise<void> => {
      if (stopped.has(n)) return
      stopped.add(n)
      await n.service.stop()
      await n.host.stop()
    }
    const keys = await Promise.all([0, 1, 2].map(async () => await generateKeyPair('Ed25519')))
    const a = await start(keys[0], [])
    const b = await start(keys[1], [a.host.addresses()[0]])
    // c plays a host of an older version: it announces no feature
    let c = await start(keys[2], [a.host.addresses()[0]], [])
    const ids = [a, b, c].map(n => n.host.peerId)
    const book = new FeatureBook({
      self: a.host.peerId,
      members: () => a.table.members(),
      connected: () => a.host.peers().map(p => p.id),
      recordFeatures: p => a.table.features(p),
      identifyFeatures: p => a.host.features(p),
      known: () => a.service.pulled() && a.host.peers().length > 0
    })
    await until('a knows every member and has identified each', () =>
      a.service.pulled() && ids.every(id => a.table.has(id)) && ids.slice(1).every(id => a.host.features(id) !== undefined), 60_000)
      .catch((err: Error) => { throw new Error(`${err.message}: pulled ${String(a.service.pulled())}, members ${a.table.members().length}, identified ${ids.slice(1).map(id => JSON.stringify(a.host.features(id))).join(' ')}`) })
    assert.deepEqual(a.host.features(b.host.peerId), [...FEATURES])
    assert.deepEqual(a.host.features(c.host.peerId), [])
    // the records are what older hosts decode: no features in them
    assert.ok(ids.every(id => a.table.features(id) === undefined))
    assert.deepEqual(book.lacking(FEATURE_MULTIEXT), [c.host.peerId])

    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-features-'), multiExtent: () => book.supportedByAll(FEATURE_MULTIEXT) })
    t.add(async () => { await vol.close() })
    const model = new Uint8Array(256 * 1024).map((_, i) => i & 0xff)
    await vol.writeFile('/db', model)
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const fh = await vol.open('/db', 'r+')
    /** Four 4 KiB pages written and fsynced: the append ops that fsync made. */
    const { sync: syncPages, offsets } = pageSyncs(vol.tree, id, fh, model, [3, 17, 40, 51])

    const fallback = await syncPages(1)
    assert.equal(fallback.length, 4, 'one op per range while c may refuse multi-extent ops')
    assert.ok(fallback.every(b => !('more' in b)))
    assert.deepEqual(offsets(fallback), [3, 17, 40, 51].map(p => p * 4096))

    // c upgraded: restarted with the same identity, announcing what this version understands
    await stop(c)
    c = await start(keys[2], [a.host.addresses()[0]])
    await until('a identified the upgraded c', () => a.host.features(c.host.peerId)?.includes(FEATURE_MULTIEXT) === true, 60_000)
    assert.equal(book.supportedByAll(FEATURE_MULTIEXT), true)

    const multi = await syncPages(2)
    assert.equal(multi.length, 1, 'one op per fsync once every member takes multi-extent ops')
    assert.equal((multi[0] as any).more?.length, 3)
    assert.deepEqual(offsets(multi), [3, 17, 40, 51].map(p => p * 4096))
    await fh.close()
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'reads back as written, with both kinds of op')
  })
})
