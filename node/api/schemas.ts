// The shared schemas of the OpenAPI document (components/schemas), JSON Schema 2020-12 as
// OpenAPI 3.1 uses it. Routes refer to them as `#/components/schemas/NAME` (ref() below).
// Numbers a JSON number cannot hold exactly (nanosecond times) travel as decimal strings.

/** `{ $ref: '#/components/schemas/NAME' }`. */
export function ref (name: string): { $ref: string } {
  return { $ref: `#/components/schemas/${name}` }
}

const int = { type: 'integer' }
const num = { type: 'number' }
const str = { type: 'string' }
const bool = { type: 'boolean' }
const decimal = { type: 'string', pattern: '^-?[0-9]+$', description: 'a 64-bit integer as a decimal string' }
const strings = { type: 'array', items: str }
const nullableNumber = { type: ['number', 'null'] }

const CHUNK_STATES = ['redundant', 'degraded', 'localOnly', 'placing', 'unreachable', 'lost', 'unknown']
/** The states a keeper counts (keeper/kept.ts KEPT_STATES), in the network totals. */
const KEPT_STATES = ['redundant', 'degraded', 'atRisk', 'unreachable', 'lost']

export const SCHEMAS: Record<string, unknown> = {
  Error: {
    type: 'object',
    description: 'Every 4xx/5xx reply: the error as the library throws it (its stable name, its message, and for filesystem errors the errno code, path and call).',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['name', 'message'],
        properties: { name: str, message: str, code: str, path: str, syscall: str, cid: str }
      }
    }
  },
  Ok: { type: 'object', required: ['ok'], properties: { ok: { const: true } } },
  Stats: {
    type: 'object',
    description: 'A file\'s metadata, as `darkfs stat --json` prints it.',
    required: ['ino', 'mode', 'kind', 'nlink', 'uid', 'gid', 'size', 'mtimeMs', 'mtimeNs'],
    properties: {
      ino: int,
      mode: { type: 'integer', description: 'type and permission bits, as st_mode' },
      kind: { enum: ['file', 'dir', 'symlink', 'fifo', 'chr', 'blk', 'sock'] },
      nlink: int,
      uid: int,
      gid: int,
      rdev: int,
      size: int,
      blocks: int,
      blksize: int,
      atimeNs: decimal,
      mtimeNs: decimal,
      ctimeNs: decimal,
      birthtimeNs: decimal,
      atimeMs: num,
      mtimeMs: num,
      ctimeMs: num
    }
  },
  ListEntry: { type: 'object', required: ['name', 'stat'], properties: { name: str, stat: { $ref: '#/components/schemas/Stats' } } },
  Version: {
    type: 'object',
    description: 'One version of a file (`darkfs log`): its id (for `GET /v1/files/content?version=`), its writer, its time (ns since the epoch) and size.',
    required: ['version', 'author', 'time', 'size'],
    properties: { version: str, author: str, time: decimal, size: int }
  },
  Conflict: {
    type: 'object',
    description: 'A name two hosts gave to different files at once: the loser, kept under a sibling name.',
    required: ['path', 'author', 'time'],
    properties: { path: str, author: str, time: decimal }
  },
  Peer: {
    type: 'object',
    required: ['id', 'addresses'],
    properties: {
      id: str,
      addresses: strings,
      latencyMs: num,
      bytesStored: { type: 'integer', minimum: 0, description: 'bytes of blocks the peer told it holds' },
      disk: { type: 'object', required: ['total', 'free', 'avail'], properties: { total: int, free: int, avail: int }, description: 'the disk under the peer\'s store, as it told' }
    }
  },
  ChunkStatus: {
    type: 'object',
    description: 'Chunk health as this host keeps it (or as a survey found it), each figure with its age.',
    required: ['total', 'at', 'source'],
    properties: {
      total: int,
      ...Object.fromEntries(CHUNK_STATES.map(s => [s, int])),
      ageMs: { type: 'object', properties: Object.fromEntries(CHUNK_STATES.map(s => [s, nullableNumber])) },
      at: num,
      source: { enum: ['kept', 'survey'] },
      surveyedAt: nullableNumber,
      surveys: int,
      surveying: bool
    }
  },
  NetworkTotals: {
    type: 'object',
    description: 'Every chunk of the network by health: the sum of the counts each member up keeps of the chunks it is the keeper of (first-ranked live host), as it last told them (no message, no survey). `reporting` of `members` up told theirs; `ageMs` is the age of the oldest observation behind the sums.',
    required: ['chunks', 'bytes', 'reporting', 'members', 'ageMs'],
    properties: {
      chunks: { type: 'object', required: ['total', ...KEPT_STATES], properties: { total: int, ...Object.fromEntries(KEPT_STATES.map(s => [s, int])) } },
      bytes: { type: 'object', required: ['total', ...KEPT_STATES], properties: { total: int, ...Object.fromEntries(KEPT_STATES.map(s => [s, int])) } },
      reporting: int,
      members: int,
      ageMs: nullableNumber
    }
  },
  RepairProgress: {
    type: 'object',
    required: ['running', 'chunks', 'checked', 'fragmentsRepaired', 'bytesPushed'],
    properties: { running: bool, chunks: int, checked: int, fragmentsRepaired: int, bytesPushed: int, bytesFetched: int, failed: int, dropped: int }
  },
  Status: {
    type: 'object',
    description: 'The host at a glance, from what it keeps (no message to any peer unless survey=1).',
    required: ['peerId', 'addresses', 'peers', 'offline', 'repair', 'bytesStored', 'space', 'at'],
    properties: {
      peerId: str,
      addresses: strings,
      peers: { type: 'integer', description: 'peers connected now' },
      offline: bool,
      chunks: { $ref: '#/components/schemas/ChunkStatus' },
      network: { $ref: '#/components/schemas/NetworkTotals' },
      repair: { $ref: '#/components/schemas/RepairProgress' },
      bytesStored: int,
      capacity: num,
      space: { type: 'object', required: ['full'], properties: { full: bool, free: nullableNumber, reserve: num } },
      fullPeers: strings,
      placement: {
        type: 'object',
        description: 'The erasure code new chunks get now (k data + m parity fragments) and the policy that picks it (`up --redundancy`, `--data-fragments`).',
        required: ['k', 'm', 'redundancy', 'dataFragments'],
        properties: { k: int, m: int, redundancy: int, dataFragments: { oneOf: [int, { enum: ['auto'] }] } }
      },
      at: { type: 'number', description: 'ms since the epoch when peers, bytes and space were read' }
    }
  },
  PinStats: {
    type: 'object',
    required: ['files', 'chunks', 'fetched', 'missing'],
    properties: { files: int, chunks: int, fetched: int, missing: int, arriving: int }
  },
  Pin: {
    type: 'object',
    description: 'A pinned path and the hosts pinning it (`here`: this host is one).',
    required: ['path', 'pinners', 'here'],
    properties: { path: str, pinners: strings, here: bool }
  },
  HealResult: {
    type: 'object',
    description: 'The repair passes `heal` ran and what is still short afterwards.',
    required: ['passes'],
    properties: {
      passes: int,
      remaining: { type: 'object', properties: { total: int, redundant: int, degraded: int, localOnly: int, lost: int, unreachable: int } }
    },
    additionalProperties: true
  },
  LeaveResult: {
    type: 'object',
    required: ['passes', 'progress'],
    properties: { passes: int, progress: { $ref: '#/components/schemas/RepairProgress' } }
  },
  ScrubResult: {
    type: 'object',
    required: ['checked', 'bytes', 'corrupt'],
    properties: { checked: int, bytes: int, corrupt: { type: 'array', items: str, description: 'CIDs of blocks that failed their hash (deleted; repair restores them)' } }
  },
  Traffic: {
    type: 'object',
    description: 'Bytes moved: the swarm (per peer), forwarding, the measured uplinks and the host per protocol.',
    properties: { swarm: { type: 'object' }, forward: { type: 'object' }, uplinks: { type: 'object' }, host: { type: 'object' } }
  },
  Config: {
    type: 'object',
    description: 'The settings this host runs with.',
    required: ['dataDir', 'listen', 'join'],
    properties: { dataDir: str, listen: strings, join: strings, announce: strings, redundancy: { type: ['integer', 'null'] }, dataFragments: { oneOf: [int, { enum: ['auto', null] }] }, api: { type: ['string', 'null'] } },
    additionalProperties: true
  },
  Tree: {
    type: 'object',
    description: 'The op log\'s heads and size, and a digest of the tree (equal on converged hosts).',
    required: ['heads', 'ops', 'digest', 'entries'],
    properties: { heads: strings, ops: int, digest: str, entries: int }
  },
  PutProgressLine: {
    type: 'object',
    description: 'One line of a `progress=1` upload: progress, then the outcome (ok or error).',
    properties: {
      progress: { type: 'object', properties: { received: int, stored: int, placed: int } },
      ok: { const: true },
      error: { type: 'object' }
    }
  }
}
