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

  it('setgid directories pass their group to new entries', async function () {
    await ok('mkdir -m 2777 shared/team && chgrp 4321 shared/team', { cwd: m.dir })
    const out = await ok('touch f; mkdir d; stat -c "%u %g %A" f d', { cwd: `${m.dir}/shared/team`, user })
    assert.equal(out, `${user.uid} 4321 -rw-r--r--\n${user.uid} 4321 drwxr-sr-x\n`)
  })
})
