// darkfs on the real test network: six `darkfs up` processes inside the namespaces of a Tinc
// mesh (scripts/mesh), listening on their VPN addresses only. Needs root. Small files at
// shaped rates keep it to about a minute.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { put, redundant, startDarkfsMesh, until } from '../../scripts/bench/mesh.ts'
import type { DarkfsMesh } from '../../scripts/bench/mesh.ts'

/** The writer's uplink and the upload cap given to h2 (bytes/s in comments). */
const WRITER_SHAPE = '4mbit/30ms'
const CAP = '2mbit'
const CAP_BYTES_PER_SECOND = 2e6 / 8
/** Measurement window for the cap (s), starting WINDOW_START_S into the upload. */
const WINDOW_START_S = 2
const WINDOW_S = 8
/** File written by the capped host: about 12 s of upload at the cap. */
const CAPPED_FILE_BYTES = 3 << 20
const FILE_BYTES = 2 << 20

describe('darkfs up on a 6-host Tinc mesh (h1 on a thin uplink, h2 with --max-upload)', function () {
  let dm: DarkfsMesh

  before(async () => {
    dm = await startDarkfsMesh(6, { name: `dkd${process.pid}`, shape: { h1: WRITER_SHAPE }, flags: { h2: ['--max-upload', CAP] } })
  })
  after(async () => { await dm?.down() })

  it('darkfs put from the thin-uplink writer: it sends each byte about once, every chunk becomes redundant, others read it', async () => {
    const before = await dm.counters('h1')
    const data = await put(dm, 'h1', '/thin.bin', FILE_BYTES)
    await redundant(dm, 'h1')
    const sent = (await dm.counters('h1')).tx - before.tx
    const amplification = sent / FILE_BYTES
    this.ctx.test!.title += ` (writer sent ${amplification.toFixed(3)}x)`
    // direct pushes of 5 of 6 fragments of a 4+2 chunk would be 1.25x, of all 6 1.5x
    assert.ok(amplification < 1.2, `writer sent ${sent} bytes for ${FILE_BYTES} (${amplification.toFixed(3)}x)`)
    assert.ok(amplification >= 1, `writer sent ${sent} bytes for ${FILE_BYTES}: less than the data itself`)
    const traffic = await dm.host('h1').client.call('traffic')
    assert.ok(traffic.forward.sent >= 2, 'the chunks went through relays')
    for (const reader of ['h4', 'h6']) {
      await until(`${reader} sees /thin.bin`, async () => (await dm.cli(reader, ['stat', '/thin.bin'])).code === 0, 30_000)
      const r = await dm.cli(reader, ['cat', '/thin.bin'])
      assert.equal(r.code, 0, r.stderr)
      assert.ok(r.stdout.equals(data), `${reader} read different bytes`)
    }
  })

  it(`darkfs up --max-upload ${CAP}: the host's upload stays within 10% of the cap`, async () => {
    const writing = put(dm, 'h2', '/capped.bin', CAPPED_FILE_BYTES)
    await sleep(WINDOW_START_S * 1000)
    const sample = async (): Promise<[{ tx: number }, number]> => await Promise.all([dm.counters('h2'), dm.host('h2').client.call('traffic').then(t => t.swarm.bytesSent)])
    const [a, sa] = await sample()
    await sleep(WINDOW_S * 1000)
    const [b, sb] = await sample()
    await writing
    const rate = (b.tx - a.tx) / WINDOW_S
    const swarmRate = (sb - sa) / WINDOW_S
    this.ctx.test!.title += ` (measured ${(rate / CAP_BYTES_PER_SECOND).toFixed(3)} of the cap on dk0, swarm ${(swarmRate / CAP_BYTES_PER_SECOND).toFixed(3)})`
    assert.ok(rate <= CAP_BYTES_PER_SECOND * 1.1, `h2 sent ${rate} B/s, cap ${CAP_BYTES_PER_SECOND}`)
    assert.ok(rate >= CAP_BYTES_PER_SECOND * 0.5, `h2 sent only ${rate} B/s while uploading`)
    await redundant(dm, 'h2')
  })
})
