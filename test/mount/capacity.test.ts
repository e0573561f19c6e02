// Issue 17 item 9: `df` on a mount shows the network's space, not this host's disk. Three
// `darkfs up` processes, each with its data dir on a tmpfs of its own size, one of them mounted:
// statfs on the mount (what `df` reads) is the live hosts' disks summed and scaled by the
// code's overhead, k / (k + m) of the chunks written now (placement.ts: 1 host 1+0, 2 hosts 1+1,
// 3 hosts 1+2 at the default redundancy 2).
import assert from 'node:assert/strict'
import { chmod, mkdir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { bounds } from '../../node/data/index.ts'
import { ok } from '../helpers/fuse-mount.ts'

const MiB = 1024 * 1024
/** The hosts' tmpfs sizes: distinct, so a sum that leaves one out or counts one twice shows. */
const SIZES = [64 * MiB, 96 * MiB, 160 * MiB]
/** statfs's block size on a darkfs mount (volume.ts). */
const BSIZE = 4096
/** How far a host's free bytes may move before it tells them again (space-notice.ts: 1%, at least 1 MiB), per host. */
const DRIFT = (size: number): number => Math.max(MiB, size / 100)

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

describe('df on a darkfs mount (real processes, tmpfs data dirs)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('statfs on the mount: a host alone shows its disk; with peers, the live hosts\' disks over k/(k+m); a host gone drops out', async () => {
    const root = await tempDir(t, 'darkfs-df-')
    await chmod(root, 0o755)
    const dirs = SIZES.map((_, i) => join(root, `h${i}`))
    for (const [i, dir] of dirs.entries()) {
      await mkdir(dir)
      await ok(`mount -t tmpfs -o size=${SIZES[i]} tmpfs ${q(dir)}`)
      t.add(async () => { await ok(`umount -l ${q(dir)}`) })
      const r = await darkfs(i === 0 ? ['init', '--data', dir, '--new-network'] : ['init', '--data', dir, '--network-key', join(dirs[0], 'network.key')])
      assert.equal(r.code, 0, r.stderr)
    }
    const mnt = join(root, 'mnt')
    t.add(async () => { await ok(`umount -l ${q(mnt)} 2>/dev/null || true`) })
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
    const hosts: Up[] = [await up(t, ['--data', dirs[0], ...listen, '--mount', mnt])]

    /** What statfs on the mount should say for hosts `live` (indexes) under code k+m, from each tmpfs as it is now. */
    const expected = async (live: number[], k: number, m: number): Promise<{ blocks: number, free: number, avail: number, slack: number }> => {
      let total = 0
      let free = 0
      let avail = 0
      let slack = 0
      for (const i of live) {
        const fs = await statfs(dirs[i])
        const size = fs.blocks * fs.bsize
        assert.equal(size, SIZES[i], 'the tmpfs has the size it was given')
        total += size
        free += fs.bavail * fs.bsize
        avail += Math.max(0, fs.bavail * fs.bsize - bounds(size).reserve)
        slack += DRIFT(size)
      }
      const scale = (b: number): number => Math.floor(b * k / (k + m))
      return { blocks: Math.floor(scale(total) / BSIZE), free: scale(free), avail: scale(avail), slack: scale(slack) + BSIZE }
    }
    const check = async (what: string, live: number[], k: number, m: number): Promise<void> => {
      const want = await expected(live, k, m)
      let got = await statfs(mnt)
      await until(`${what}: statfs on the mount shows ${want.blocks} blocks`, async () => {
        got = await statfs(mnt)
        return got.blocks === want.blocks
      }, 60_000)
      assert.equal(got.bsize, BSIZE)
      const near = (name: string, bytes: number, wantBytes: number): void => {
        assert.ok(Math.abs(bytes - wantBytes) <= want.slack, `${what}: ${name} ${bytes} bytes, expected ${wantBytes} ± ${want.slack}`)
      }
      near('free', got.bfree * got.bsize, want.free)
      near('available', got.bavail * got.bsize, want.avail)
      assert.ok(got.bavail <= got.bfree && got.bfree <= got.blocks, `${what}: avail <= free <= size`)
      // df reads the same statfs: its size column is the network's
      const df = (await ok(`df -B1 --output=size ${q(mnt)}`)).trim().split('\n').at(-1)
      assert.equal(Number(df), want.blocks * BSIZE, `${what}: df's size`)
    }

    await check('a host alone', [0], 1, 0)
    for (const dir of dirs.slice(1)) hosts.push(await up(t, ['--data', dir, ...listen, '--join', hosts[0].addresses[0]]))
    await check('three hosts', [0, 1, 2], 1, 2)
    assert.equal(await hosts[2].stop('SIGTERM'), 0)
    await check('the third host stopped', [0, 1], 1, 1)
  })
})
