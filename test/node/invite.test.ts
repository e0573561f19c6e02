// The invite string (node/net/invite.ts): it round-trips, a change of any one character or a
// cut is detected, an expired one says when it expired, and the addresses it carries are the
// live members' (loopback only when nothing else exists).
import assert from 'node:assert/strict'
import { BadInviteError, INVITE_PREFIX, InviteExpiredError, MAX_INVITE_ADDRESSES, decodeInvite, encodeInvite, inviteAddresses, parseInviteValidity, readInvite } from '../../node/net/invite.ts'
import { UsageError } from '../../node/errors.ts'

const A = '12D3KooWMGRiHZGw7wNVxAcrY4FNNBHykJqDdbLVxQH4tCDW6HUQ'
const B = '12D3KooWNiZxRKpk9eMvUh5cZ2bt2LuSuTfz4kc9B83W22ZTPMeD'

describe('invites (node/net/invite.ts)', () => {
  // a fixed key: the mangling below is then the same every run (a checksum of 32 bits misses a
  // given mangle with odds of 2^-32; these ones are all caught)
  const networkKey = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)
  const now = Date.UTC(2030, 0, 1)
  const addresses = [`/ip4/10.0.0.1/tcp/4001/p2p/${A}`, `/ip6/fd00::2/tcp/4001/p2p/${B}`]
  const text = encodeInvite({ networkKey, addresses, expiresAt: now + 3600_000 })

  it('decodeInvite(encodeInvite(x)) is x; whitespace a terminal wrapped in is ignored', () => {
    assert.ok(text.startsWith(INVITE_PREFIX))
    assert.match(text.slice(INVITE_PREFIX.length), /^[A-Za-z0-9_-]+$/)
    const back = decodeInvite(text, now)
    assert.deepEqual(back, { networkKey, addresses, expiresAt: now + 3600_000 })
    const wrapped = `  ${text.slice(0, 40)}\n${text.slice(40, 90)}\r\n ${text.slice(90)}\n`
    assert.deepEqual(decodeInvite(wrapped, now), back)
  })

  it('a change of any one character, or any cut, is refused as damaged (BadInviteError, one line)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    for (let i = INVITE_PREFIX.length; i < text.length; i++) {
      for (const other of alphabet) {
        if (other === text[i]) continue
        const mangled = text.slice(0, i) + other + text.slice(i + 1)
        assert.throws(() => decodeInvite(mangled, now), (err: any) => err instanceof BadInviteError && err instanceof UsageError && !err.message.includes('\n'), `char ${i} -> ${other}`)
      }
    }
    for (let n = 0; n < text.length; n++) {
      assert.throws(() => decodeInvite(text.slice(0, n), now), BadInviteError, `cut at ${n}`)
    }
    assert.throws(() => decodeInvite(text + 'A', now), BadInviteError)
    assert.throws(() => decodeInvite(INVITE_PREFIX + '+' + text.slice(INVITE_PREFIX.length + 1), now), /characters an invite never has/)
    assert.throws(() => decodeInvite('darkfs-invite2:AAAA', now), /invite format 2; this darkfs reads format 1/)
    assert.throws(() => decodeInvite('/key/swarm/psk/1.0.0/', now), /does not start with darkfs-invite1:/)
  })

  it('an expired invite says when it expired; readInvite still reads it', () => {
    const expiresAt = now + 3600_000
    assert.throws(() => decodeInvite(text, expiresAt), (err: any) => err instanceof InviteExpiredError && err.message.includes(new Date(expiresAt).toISOString()) && /expired/.test(err.message))
    assert.deepEqual(readInvite(text).addresses, addresses)
  })

  it('inviteAddresses: own and connected peers\', with /p2p/ ids, round the hosts; loopback only when alone', () => {
    const own = ['/ip4/127.0.0.1/tcp/1/p2p/' + A, '/ip4/10.0.0.1/tcp/1/p2p/' + A, '/ip4/10.0.0.9/tcp/1/p2p/' + A]
    const peers = [{ id: B, addresses: ['/ip4/127.0.0.1/tcp/2', '/ip4/10.0.0.2/tcp/2'] }]
    assert.deepEqual(inviteAddresses(own, peers), [`/ip4/10.0.0.1/tcp/1/p2p/${A}`, `/ip4/10.0.0.2/tcp/2/p2p/${B}`, `/ip4/10.0.0.9/tcp/1/p2p/${A}`])
    assert.deepEqual(inviteAddresses([own[0]], [{ id: B, addresses: ['/ip4/127.0.0.1/tcp/2'] }]), [own[0], `/ip4/127.0.0.1/tcp/2/p2p/${B}`])
    const many = Array.from({ length: 20 }, (_, i) => `/ip4/10.0.1.${i}/tcp/1/p2p/${A}`)
    assert.equal(inviteAddresses(many, peers).length, MAX_INVITE_ADDRESSES)
    assert.ok(inviteAddresses(many, peers).includes(`/ip4/10.0.0.2/tcp/2/p2p/${B}`), 'a peer is not crowded out')
  })

  it('parseInviteValidity: 90s 30m 24h 7d; nonsense, zero and over a year are usage errors', () => {
    assert.equal(parseInviteValidity('90s'), 90_000)
    assert.equal(parseInviteValidity('30m'), 1_800_000)
    assert.equal(parseInviteValidity(undefined), 86_400_000)
    assert.equal(parseInviteValidity('7d'), 7 * 86_400_000)
    for (const bad of ['', '24', 'h', '0s', '400d', '-1h', '1w']) assert.throws(() => parseInviteValidity(bad), UsageError, bad)
  })
})
