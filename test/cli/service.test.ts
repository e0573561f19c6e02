// Running as a systemd service (issue 13): scripts/darkfs.service passes `systemd-analyze
// verify`; `darkfs up` tells $NOTIFY_SOCKET READY=1 once it serves and is mounted (here a fake
// notify socket the test listens on, as systemd would), from the main process whether it
// supervises a worker or not; SIGTERM, the unit's stop signal, unmounts and exits 0.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

async function run (cmd: string, args: string[]): Promise<{ code: number, out: string }> {
  return await new Promise(resolve => {
    execFile(cmd, args, { timeout: 120_000 }, (err: any, stdout, stderr) => {
      resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, out: String(stdout) + String(stderr) })
    })
  })
}

/**
 * A unix datagram socket at `path` as systemd's notify socket: Node has no unix datagram
 * sockets, so python3 (in scripts/setup) receives and prints each message as a JSON line.
 */
async function notifySocket (t: Teardown, path: string): Promise<{ messages: string[], next: () => Promise<string> }> {
  const py = spawn('python3', ['-u', '-c', [
    'import socket, sys, json',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    `s.bind(${JSON.stringify(path)})`,
    'print("bound", flush=True)',
    'while True:',
    '    print(json.dumps(s.recv(65536).decode()), flush=True)'
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.add(async () => { py.kill('SIGKILL') })
  const messages: string[] = []
  let waiting: Array<() => void> = []
  let buf = ''
  let bound: () => void
  const isBound = new Promise<void>(resolve => { bound = resolve })
  py.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line === 'bound') { bound(); continue }
      const msg = JSON.parse(line)
      // systemd-notify's sync barrier (sd_notify_barrier): for systemd, not a notification
      if (msg === 'BARRIER=1') continue
      messages.push(msg)
      for (const w of waiting) w()
      waiting = []
    }
  })
  await isBound
  let read = 0
  const next = async (): Promise<string> => {
    while (messages.length <= read) await new Promise<void>(resolve => waiting.push(resolve))
    return messages[read++]
  }
  return { messages, next }
}

const fields = (msg: string): Record<string, string> => Object.fromEntries(msg.split('\n').filter(l => l !== '').map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

describe('darkfs as a systemd service', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('scripts/darkfs.service passes systemd-analyze verify (ExecStart pointed at this checkout)', async () => {
    const dir = await tempDir(t)
    const unit = (await readFile(join(root, 'scripts', 'darkfs.service'), 'utf8')).replaceAll('/opt/darkfs', root)
    assert.match(unit, /^Type=notify$/m)
    assert.match(unit, /^ExecStart=.* up --no-restart /m)
    const file = join(dir, 'darkfs.service')
    await writeFile(file, unit)
    const r = await run('systemd-analyze', ['verify', file])
    assert.equal(r.code, 0, r.out)
    assert.doesNotMatch(r.out, /darkfs\.service/, r.out)
  })

  it('up --no-restart --mount: READY=1 from the host\'s own pid once mounted; SIGTERM unmounts and exits 0', async () => {
    const dir = await tempDir(t)
    const data = join(dir, 'data')
    const mnt = join(dir, 'mnt')
    t.add(async () => { await run('umount', ['-l', mnt]) })
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const sock = await notifySocket(t, join(dir, 'notify.sock'))
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt, '--no-restart'], { env: { NOTIFY_SOCKET: join(dir, 'notify.sock') } })
    const msg = fields(await sock.next())
    assert.equal(msg.READY, '1')
    assert.equal(msg.MAINPID, String(host.child.pid))
    assert.equal(msg.STATUS, `serving, mounted on ${mnt}`)
    assert.ok(host.lines.includes(`mounted ${mnt}`))
    assert.equal((await run('findmnt', ['-n', '--mountpoint', mnt])).code, 0, 'mounted')
    assert.equal(await host.stop('SIGTERM'), 0)
    assert.notEqual((await run('findmnt', ['-n', '--mountpoint', mnt])).code, 0, 'unmounted on SIGTERM')
    assert.equal(sock.messages.length, 1, sock.messages.join(' | '))
  })

  it('up under its own supervisor: READY=1 comes from the supervisor (the main pid), not the worker', async () => {
    const dir = await tempDir(t)
    const data = join(dir, 'data')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const sock = await notifySocket(t, join(dir, 'notify.sock'))
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'], { env: { NOTIFY_SOCKET: join(dir, 'notify.sock') } })
    const msg = fields(await sock.next())
    assert.equal(msg.READY, '1')
    assert.equal(msg.MAINPID, String(host.child.pid))
    assert.equal(await host.stop('SIGTERM'), 0)
    assert.equal(sock.messages.length, 1, sock.messages.join(' | '))
  })

  it('without NOTIFY_SOCKET nothing is sent and nothing fails (a terminal, a test)', async () => {
    const dir = await tempDir(t)
    const data = join(dir, 'data')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-restart'], { env: { NOTIFY_SOCKET: undefined } })
    assert.equal(await host.stop('SIGTERM'), 0)
    assert.doesNotMatch(host.stderr(), /systemd/)
  })
})
