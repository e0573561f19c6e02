// POST /v1/invites {expires?: "24h"} -> {invite, expires}: an invite string (node/net/invite.ts)
// with the network key and the addresses of the live members, for `darkfs invite`. The string
// is a secret (whoever holds it can join the network until it expires): this route is served on
// the control socket (the data dir's owner) and on `--api` only behind its bearer token.
import type { IncomingMessage } from 'node:http'
import { UsageError } from '../errors.ts'
import { encodeInvite, inviteAddresses, parseInviteValidity, DEFAULT_INVITE_VALID, INVITE_PREFIX } from '../net/index.ts'
import type { Host } from '../net/index.ts'
import { readJson, sendJson } from './route.ts'
import type { Route } from './route.ts'
import { jsonResponse } from './openapi.ts'
import { ref } from './schemas.ts'

export interface InviteDeps {
  networkKey: Uint8Array
  host: Pick<Host, 'addresses' | 'peers'>
  now?: () => number
}

async function body (req: IncomingMessage): Promise<Record<string, unknown>> {
  // an empty body is `{}` (every field has a default)
  if (req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) return {}
  const b = await readJson(req)
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new UsageError('the request body is a JSON object: {"expires": "24h"}')
  for (const k of Object.keys(b)) if (k !== 'expires') throw new UsageError(`unknown field ${JSON.stringify(k)} (only "expires")`)
  return b
}

export function inviteRoutes (deps: InviteDeps): Route[] {
  const now = deps.now ?? Date.now
  return [{
    method: 'POST',
    path: '/v1/invites',
    operation: {
      operationId: 'createInvite',
      summary: 'Make an invite: one string with the network key and live members\' addresses',
      description: `A string \`${INVITE_PREFIX}...\` that \`darkfs up --invite STRING\` (or \`darkfs init --invite\`) joins with until it expires. It carries the network key: treat it as a secret.`,
      tags: ['network'],
      requestBody: {
        required: false,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              additionalProperties: false,
              properties: { expires: { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*(s|m|h|d)$', default: DEFAULT_INVITE_VALID, description: 'validity: 90s, 30m, 24h, 7d (1s to 365d)' } }
            }
          }
        }
      },
      responses: {
        200: {
          description: 'the invite',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['invite', 'expires'],
                additionalProperties: false,
                properties: {
                  invite: { type: 'string', description: 'the invite string (a secret)' },
                  expires: { type: 'integer', description: 'when it expires, ms since the Unix epoch' },
                  addresses: { type: 'array', items: { type: 'string' }, description: 'the member addresses it carries' }
                }
              }
            }
          }
        },
        400: jsonResponse('a malformed body or a bad `expires`', ref('Error'))
      }
    },
    handle: async (req, res) => {
      const b = await body(req)
      if (b.expires !== undefined && typeof b.expires !== 'string') throw new UsageError('"expires" is a duration string such as "24h"')
      const validMs = parseInviteValidity(b.expires as string | undefined)
      const addresses = inviteAddresses(deps.host.addresses(), deps.host.peers())
      if (addresses.length === 0) throw new UsageError('this host has no address a new host could dial (see `darkfs up --listen/--announce`)')
      // whole seconds, as the invite stores them
      const expires = Math.floor((now() + validMs) / 1000) * 1000
      const invite = encodeInvite({ networkKey: deps.networkKey, addresses, expiresAt: expires })
      sendJson(res, 200, { invite, expires, addresses })
    }
  }]
}
