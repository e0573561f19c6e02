// Ownership and permission checks through the mount, acting as an unprivileged user
// (created with useradd when missing). The kernel enforces modes (default_permissions); the
// adapter makes the caller the owner of what it creates and applies setgid directories.
import assert from 'node:assert/strict'
import { teardown, mountTemp, ok, sh, testUser } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

describe('fuse permissions', function () {
  let t: Teardown
  let m: Mounted
  let user: { uid: number, gid: number }

  beforeEach(async function () {
    t = teardown()
    user = await testUser()
    m = await mountTemp(t)
    await ok(`chmod 755 . && mkdir shared && chmod 1777 shared && mkdir private && chmod 700 private &&
      echo secret > root-file && chmod 644 root-file`, { cwd: m.dir })
  })
  afterEach(async function () { await t.run() })

  it('files and dirs created by a user are owned by that user, with its umask', async function () {
    const out = await ok('umask 027; echo mine > f; mkdir d; ln -s f s; mkfifo p; stat -c "%U:%u:%g %a %F" f d p; stat -c "%u:%g" s',
      { cwd: `${m.dir}/shared`, user })
    assert.equal(out,
      `darkfs-test:${user.uid}:${user.gid} 640 regular file\n` +
      `darkfs-test:${user.uid}:${user.gid} 750 directory\n` +
      `darkfs-test:${user.uid}:${user.gid} 640 fifo\n` +
      `${user.uid}:${user.gid}\n`)
  })

  it('EACCES on a file and a directory the user may not write or enter', async function () {
    const write = await sh('echo x >> root-file', { cwd: m.dir, user })
    assert.match(write.stderr, /Permission denied/)
    const create = await sh('touch new', { cwd: m.dir, user })
    assert.match(create.stderr, /Permission denied/)
    const enter = await sh('ls private', { cwd: m.dir, user })
    assert.match(enter.stderr, /Permission denied/)
    assert.equal(await ok('cat root-file', { cwd: m.dir, user }), 'secret\n')
    assert.equal(await ok('cat root-file; ls', { cwd: m.dir }), 'secret\nprivate\nroot-file\nshared\n')
  })

  it('EPERM for chown and chmod of files the user does not own; sticky dirs protect others\' files', async function () {
    await ok('touch shared/roots && chmod 666 shared/roots', { cwd: m.dir })
    const chown = await sh('touch mine; chown 0 mine', { cwd: `${m.dir}/shared`, user })
    assert.match(chown.stderr, /Operation not permitted/)
    const chmod = await sh('chmod 600 roots', { cwd: `${m.dir}/shared`, user })
    assert.match(chmod.stderr, /Operation not permitted/)
    const del = await sh('rm -f roots', { cwd: `${m.dir}/shared`, user })
    assert.match(del.stderr, /Operation not permitted/)
    assert.equal(await ok('echo appended >> roots; cat roots', { cwd: `${m.dir}/shared`, user }), 'appended\n')
  })

  // an O_APPEND handle is direct I/O (fuse/binding.c): the kernel leaves clearing the bits to
  // the filesystem (FUSE_WRITE_KILL_SUIDGID), where a write through the page cache has them
  // cleared by the kernel itself. The last file is written in place through a plain handle, for
  // reference
  async function appendsClearSuid (dir: string): Promise<void> {
    const appendRdwr = (f: string): string => `perl -e 'use Fcntl; sysopen(F, "${f}", O_RDWR|O_APPEND) or die $!; syswrite(F, "c\\n") == 2 or die $!'`
    const out = await ok(`
      for m in 6755 4755 2755 2745; do echo a > f$m; chmod $m f$m; echo b >> f$m; done
      echo a > rw; chmod 6755 rw; ${appendRdwr('rw')}
      echo a > pw; chmod 6755 pw; echo b 1<> pw
      stat -c '%n %a' f6755 f4755 f2755 f2745 rw pw; cat f6755 rw`, { cwd: dir, user })
    assert.equal(out, 'f6755 755\nf4755 755\nf2755 755\nf2745 2745\nrw 755\npw 755\na\nb\na\nc\n')
  }

  it('a write through an O_APPEND handle clears setuid, and setgid when group-executable, as other writes do', async function () {
    await appendsClearSuid(`${m.dir}/shared`)
  })

  it('... also a write the binding leaves to libfuse (directWrites 0: every write)', async function () {
    const m0 = await mountTemp(t, { directWrites: 0 })
    await ok('chmod 1777 .', { cwd: m0.dir })
    await appendsClearSuid(m0.dir)
  })

  it('root (CAP_FSETID) appending keeps setuid and setgid', async function () {
    const out = await ok('echo a > f; chmod 6755 f; echo b >> f; stat -c %a f', { cwd: `${m.dir}/shared` })
    assert.equal(out, '6755\n')
  })

  it('setgid directories pass their group to new entries', async function () {
    await ok('mkdir -m 2777 shared/team && chgrp 4321 shared/team', { cwd: m.dir })
    const out = await ok('touch f; mkdir d; stat -c "%u %g %A" f d', { cwd: `${m.dir}/shared/team`, user })
    assert.equal(out, `${user.uid} 4321 -rw-r--r--\n${user.uid} 4321 drwxr-sr-x\n`)
  })
})
