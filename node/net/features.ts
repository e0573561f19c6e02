// Features: what a host of a network understands beyond what every host of it did before, so a
// writer makes a new kind of op only once every member takes it (rolling upgrades; issue 15 item
// 1, multi-extent ops). A host of an older version refuses an op it cannot decode, and gossip
// scores that against the peer that forwarded it (host.ts GOSSIP_TOPIC_SCORE): a second one
// graylists it. So the op must not be made while any member would refuse it.
//
// A feature is named `<name>/<version>` ('multiext/1'). A host announces its features on two
// channels:
//  - identify (now): each feature is a protocol this host handles, FEATURE_PROTOCOL_PREFIX +
//    the feature (/darkfs/feature/multiext/1; host.ts registers them before its first dial, and
//    any stream opened on one is closed at once: nothing is spoken there). libp2p's identify
//    lists a host's protocols to every peer it connects to; a host of an older version lists
//    none, and does not look at protocols it does not know, so nothing about it changes. This is
//    why the feature list is not (yet) in the member record: records of this network are decoded
//    strictly ({ peer, seq, addrs, cap? } and nothing else, members.ts), so a host of an older
//    version refuses a record with a new field, whole: it would drop the new host from its table
//    (placement would rank members differently on old and new hosts) and score down every peer
//    that forwards its record. Identify reaches only connected peers: in a full mesh (up to
//    FULL_MESH_PEERS members) that is every member; beyond it, a host learns the features of the
//    members it has been connected to (neighbours, transfers, surveys) and treats the others as
//    not supporting any, so it writes single-extent ops there (safe, one op per range).
//  - the member record's `features` (decoded now, signed later): this version's decoders take an
//    optional `features` field, validated by parseFeatures (a short sorted list of unique
//    feature names, FEATURE_PATTERN). Hosts of this version do not sign it yet (MemberTable's
//    `features` init stays unset in the daemon): only once every host of a network decodes it,
//    that is runs this version or newer, can a record carry it without being refused. A later
//    version signs it, and then every member's features reach every host with the member table,
//    connected or not (beyond the full mesh too).
//
// FeatureBook joins both: a peer supports a feature when its record lists it or its last identify
// did. supportedByAll() asks it of every member of the table and every connected peer (a joiner
// connected before its record arrived); a member not heard of on either channel supports nothing.
// And it answers no while this host cannot know every member: a host of a network that is offline
// (its table may be all but empty, and its ops reach the others when it is back), or that has not
// pulled a peer's member table since it started (the daemon's `known`). A host alone, never
// told to join anyone and never connected, is a network of one: every member is itself.
import { RpcProtocolError } from './rpc.ts'

/** Multi-extent `append` ops (node/tree op.ts `more`, up to MAX_OP_EXTENTS ranges in one op). */
export const FEATURE_MULTIEXT = 'multiext/1'
/** The ops protocol's `hold` request (sync.ts): a peer holds an op durably before an fsync returns. */
export const FEATURE_HOLD = 'hold/1'
/**
 * A host's repair passes fetch the fragment copies it must hold from the live hosts that hold
 * them (keeper/repair.ts pullsHere): a keeper leaves those copies to it instead of fetching and
 * pushing them again itself.
 */
export const FEATURE_PULL = 'pull/1'
/**
 * A host reads and repairs chunks coded with a Clay code (data/clay.ts; ChunkRef.clay, manifest
 * v3): a host whose codec is 'clay' writes them only while every member says it takes them.
 */
export const FEATURE_CLAY = 'clay/1'
/**
 * A host sums the keeper counts along the tree beyond the full mesh (keeper/kept-tree.ts): it
 * takes its children's sums ('sum' calls on the kept table protocol) and the root's totals on
 * gossip under KEPT_SUM_GOSSIP_TAG. A host does not send its sum to a parent that announced
 * its features without this one (a host of an older version refuses the call).
 */
export const FEATURE_KEPT_TREE = 'kepttree/1'
/**
 * A host answers sync requests on the members protocol (members.ts: member messages spread by
 * pull on the anti-entropy round): a host sends them to peers that announced this, and publishes
 * member messages on gossip while some member's record does not list it.
 */
export const FEATURE_MEMBER_PULL = 'memberpull/1'
/**
 * A host names the origin of every block it pushes (swarm '/darkfs/swarm/1.2.0', PUSH_FROM: a
 * writer names itself, a hop or relay the writer it forwards for). While every member announces
 * it, a push naming no origin is its sender's own, and a holder lets no one but its putters
 * release it (keeper/release.ts: the RELAYED_FRESH_MS rule is for older hosts' hops).
 */
export const FEATURE_ORIGINS = 'origins/1'
/** The features a host of this version understands and announces (sorted, as a list must be). */
export const FEATURES: readonly string[] = [FEATURE_CLAY, FEATURE_HOLD, FEATURE_KEPT_TREE, FEATURE_MEMBER_PULL, FEATURE_MULTIEXT, FEATURE_ORIGINS, FEATURE_PULL]
/** Protocol id prefix under which a host announces a feature on identify. */
export const FEATURE_PROTOCOL_PREFIX = '/darkfs/feature/'
/** Most features one list (a record's, an identify's) holds. */
export const MAX_FEATURES = 32
/** Longest feature name. */
export const MAX_FEATURE_CHARS = 40
/** A feature name: lowercase name, a slash, a version number (`multiext/1`). */
export const FEATURE_PATTERN = /^[a-z][a-z0-9-]*\/[1-9][0-9]{0,5}$/

export class FeatureListError extends RpcProtocolError {
  override readonly name = 'FeatureListError'
}

/** The identify protocol that announces `feature`. */
export function featureProtocol (feature: string): string {
  return FEATURE_PROTOCOL_PREFIX + feature
}

/**
 * A feature list as a record carries it: an array of at most MAX_FEATURES feature names
 * (FEATURE_PATTERN, at most MAX_FEATURE_CHARS each), strictly increasing (sorted, no duplicate:
 * one signed form per set). Throws FeatureListError saying what is wrong.
 */
export function parseFeatures (v: unknown): string[] {
  if (!Array.isArray(v)) throw new FeatureListError('features must be an array of strings')
  if (v.length > MAX_FEATURES) throw new FeatureListError(`features lists ${v.length} entries, at most ${MAX_FEATURES}`)
  for (let i = 0; i < v.length; i++) {
    const f: unknown = v[i]
    if (typeof f !== 'string') throw new FeatureListError(`feature ${i} is not a string`)
    if (f.length > MAX_FEATURE_CHARS) throw new FeatureListError(`feature ${i} is longer than ${MAX_FEATURE_CHARS} characters`)
    if (!FEATURE_PATTERN.test(f)) throw new FeatureListError(`feature ${i} is not <name>/<version>: ${JSON.stringify(f)}`)
    if (i > 0 && !((v[i - 1] as string) < f)) throw new FeatureListError(`features must be sorted and unique: ${JSON.stringify(v[i - 1])} before ${JSON.stringify(f)}`)
  }
  return [...v] as string[]
}

/**
 * The features a peer's identify announced: its protocols under FEATURE_PROTOCOL_PREFIX that name
 * a well-formed feature (anything else there is ignored: a peer's protocols are its own, and a
 * newer host may announce what this one cannot parse). At most MAX_FEATURES kept.
 */
export function featuresOfProtocols (protocols: readonly string[]): string[] {
  const out = new Set<string>()
  for (const p of protocols) {
    if (!p.startsWith(FEATURE_PROTOCOL_PREFIX)) continue
    const f = p.slice(FEATURE_PROTOCOL_PREFIX.length)
    if (f.length <= MAX_FEATURE_CHARS && FEATURE_PATTERN.test(f)) out.add(f)
    if (out.size >= MAX_FEATURES) break
  }
  return [...out].sort()
}

export interface FeatureSources {
  /** This host's id (it supports its own features). */
  self: string
  /** The features this host understands (default FEATURES). */
  own?: readonly string[]
  /** The members of the table (members.ts members(): not declared down). */
  members: () => Iterable<string>
  /** The connected peers (a joiner is connected before its record reaches this host). */
  connected: () => Iterable<string>
  /** The features `peer` signed into its record, if its record has the field. */
  recordFeatures: (peer: string) => readonly string[] | undefined
  /** The features `peer` announced on its last identify, if this host ever identified it. */
  identifyFeatures: (peer: string) => readonly string[] | undefined
  /** Whether this host may know every member now (see the header). Default: always. */
  known?: () => boolean
}

/** What this host knows of its peers' features (see the header). */
export class FeatureBook {
  private readonly src: FeatureSources
  private readonly own: ReadonlySet<string>

  constructor (src: FeatureSources) {
    this.src = src
    this.own = new Set(src.own ?? FEATURES)
  }

  /** Whether `peer` is known to support `feature` (its record or its identify says so). */
  supports (peer: string, feature: string): boolean {
    if (peer === this.src.self) return this.own.has(feature)
    return this.src.recordFeatures(peer)?.includes(feature) === true || this.src.identifyFeatures(peer)?.includes(feature) === true
  }

  /** The members and connected peers not known to support `feature` (empty: every one does). */
  lacking (feature: string): string[] {
    const out = new Set<string>()
    for (const p of this.src.members()) if (!this.supports(p, feature)) out.add(p)
    for (const p of this.src.connected()) if (!this.supports(p, feature)) out.add(p)
    return [...out]
  }

  /** Whether every member and connected peer is known to support `feature`. */
  supportedByAll (feature: string): boolean {
    if (!this.own.has(feature) || this.src.known?.() === false) return false
    for (const p of this.src.members()) if (!this.supports(p, feature)) return false
    for (const p of this.src.connected()) if (!this.supports(p, feature)) return false
    return true
  }
}
