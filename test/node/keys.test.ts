import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity, createNetworkKey, readNetworkKey, writeNetworkKey, parseNetworkKey, formatNetworkKey, IDENTITY_FILE, NETWORK_KEY_BYTES } from '../../node/net/keys.ts'

describe('node/keys', function () {
  let dir: string
  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'darkfs-keys-'))
  })
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true })
  })

  it('loadOrCreateIdentity(dir) creates an Ed25519 key (mode 0600) and loads the same one again', async function () {
    const a = await loadOrCreateIdentity(dir)
    assert.equal(a.type, 'Ed25519')
    const st = await stat(join(dir, IDENTITY_FILE))
    assert.equal(st.mode & 0o777, 0o600)
    const b = await loadOrCreateIdentity(dir)
    assert.ok(a.equals(b))
  })

  it('loadOrCreateIdentity(dir) creates the data dir when missing', async function () {
    const key = await loadOrCreateIdentity(join(dir, 'a', 'b'))
    assert.ok((await loadOrCreateIdentity(join(dir, 'a', 'b'))).equals(key))
  })

  it('loadOrCreateIdentity(dir) run concurrently agrees on one identity', async function () {
    const keys = await Promise.all(Array.from({ length: 5 }, async () => await loadOrCreateIdentity(dir)))
    for (const k of keys) assert.ok(k.equals(keys[0]))
  })

  it('loadOrCreateIdentity(dir) with a corrupt identity file fails with BadIdentityError and leaves it', async function () {
    await writeFile(join(dir, IDENTITY_FILE), 'garbage')
    await assert.rejects(loadOrCreateIdentity(dir), { name: 'BadIdentityError' })
    assert.equal(await readFile(join(dir, IDENTITY_FILE), 'utf8'), 'garbage')
  })

  it('writeNetworkKey()/readNetworkKey() round-trip the pnet swarm.key format, mode 0600', async function () {
    const key = createNetworkKey()
    assert.equal(key.byteLength, NETWORK_KEY_BYTES)
    const file = join(dir, 'network.key')
    await writeNetworkKey(file, key)
    const text = await readFile(file, 'utf8')
    assert.match(text, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.deepEqual(await readNetworkKey(file), key)
    assert.notDeepEqual(createNetworkKey(), key)
  })

  it('writeNetworkKey() never overwrites an existing key file', async function () {
    const file = join(dir, 'network.key')
    const key = createNetworkKey()
    await writeNetworkKey(file, key)
    await assert.rejects(writeNetworkKey(file, createNetworkKey()), { code: 'EEXIST' })
    assert.deepEqual(await readNetworkKey(file), key)
  })

  it('readNetworkKey() accepts CRLF and upper-case hex (keys made by other tools)', async function () {
    const file = join(dir, 'swarm.key')
    const hex = 'AB'.repeat(32)
    await writeFile(file, `/key/swarm/psk/1.0.0/\r\n/base16/\r\n${hex}`)
    assert.deepEqual(await readNetworkKey(file), new Uint8Array(32).fill(0xab))
  })

  it('readNetworkKey() of a malformed file fails with BadNetworkKeyError naming the file', async function () {
    const good = formatNetworkKey(createNetworkKey())
    const bad = [
      '',
      'hello',
      good.replace('/key/swarm/psk/1.0.0/', '/key/swarm/psk/2.0.0/'),
      good.replace('/base16/', '/base64/'),
      good.replace(/[0-9a-f]{64}/, 'ab'.repeat(31)),
      good.replace(/[0-9a-f]{64}/, 'zz'.repeat(32)),
      good + 'extra line\n',
      'x'.repeat(10000)
    ]
    for (const text of bad) {
      const file = join(dir, 'bad.key')
      await writeFile(file, text)
      await assert.rejects(readNetworkKey(file), (err: any) => err.name === 'BadNetworkKeyError' && err.message.includes(file), JSON.stringify(text.slice(0, 40)))
    }
    assert.throws(() => parseNetworkKey('nope'), { name: 'BadNetworkKeyError' })
    assert.throws(() => formatNetworkKey(new Uint8Array(31)), { name: 'BadNetworkKeyError' })
  })
})
