import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signerFor, verify } from '../../node/net/signing.ts'

describe('node/net/signing', function () {
  it('signerFor(key).sign(bytes) is the Ed25519 signature libp2p makes and checks', async function () {
    const key = await generateKeyPair('Ed25519')
    const signer = signerFor(key)
    assert.equal(signer.author, peerIdFromPrivateKey(key).toString())
    const msg = new TextEncoder().encode('an op')
    const sig = await signer.sign(msg)
    assert.deepEqual(Buffer.from(sig), Buffer.from(await key.sign(msg)))
    assert.equal(await key.publicKey.verify(msg, sig), true)
  })

  it('verify(author, bytes, sig) takes good signatures and refuses changed bytes, bad signatures and bad authors', async function () {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const signer = signerFor(key)
    const msg = new TextEncoder().encode('an op')
    const sig = await signer.sign(msg)
    assert.equal(await verify(signer.author, msg, sig), true)
    assert.equal(await verify(signer.author, new TextEncoder().encode('an oq'), sig), false)
    assert.equal(await verify(signer.author, msg, sig.slice(0, 63)), false)
    assert.equal(await verify(signer.author, msg, new Uint8Array(64)), false)
    assert.equal(await verify(signerFor(other).author, msg, sig), false)
    assert.equal(await verify('not-a-peer-id', msg, sig), false)
  })

  it('verify.now(author, bytes, sig) answers as verify() on the calling thread; for a key with no Ed25519 object, undefined (verify() checks it)', async function () {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const signer = signerFor(key)
    const msg = new TextEncoder().encode('an op')
    const sig = await signer.sign(msg)
    const now = verify.now!
    assert.equal(now(signer.author, msg, sig), true)
    assert.equal(now(signer.author, new TextEncoder().encode('an oq'), sig), false)
    assert.equal(now(signer.author, msg, sig.slice(0, 63)), false)
    assert.equal(now(signer.author, msg, new Uint8Array(64)), false)
    assert.equal(now(signerFor(other).author, msg, sig), false)
    assert.equal(now('not-a-peer-id', msg, sig), false)
    const secp = await generateKeyPair('secp256k1')
    const secpSigner = signerFor(secp)
    const secpSig = await secpSigner.sign(msg)
    assert.equal(now(secpSigner.author, msg, secpSig), undefined)
    assert.equal(await verify(secpSigner.author, msg, secpSig), true)
    assert.equal(await verify(secpSigner.author, new TextEncoder().encode('an oq'), secpSig), false)
  })

  it('verify checks the bytes and signature as they were when called, many checks in flight at once each with its own answer', async function () {
    const key = await generateKeyPair('Ed25519')
    const signer = signerFor(key)
    const msgs = Array.from({ length: 32 }, (_, i) => new TextEncoder().encode(`op ${i}`))
    const sigs = await Promise.all(msgs.map(async m => await signer.sign(m)))
    // every other check is given another message's signature: refused, the rest taken
    const checks = msgs.map((m, i) => verify(signer.author, m, i % 2 === 0 ? sigs[i] : sigs[(i + 1) % msgs.length]))
    // the caller's buffers changed while the checks run (in the thread pool): no answer changes
    for (const m of msgs) m.fill(0)
    for (const s of sigs) s.fill(0)
    const answers = await Promise.all(checks)
    assert.deepEqual(answers, msgs.map((_, i) => i % 2 === 0))
  })
})
