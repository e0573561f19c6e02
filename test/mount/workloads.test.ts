// Real programs on a real mount: git, tar, make, sqlite3, cp -a.
import assert from 'node:assert/strict'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

/** Can the Volume set owner and times of a symlink itself (VolumeApi.lchown/lutimes)? */
function symlinkAttrs (m: Mounted): boolean {
  return m.volume.lutimes !== undefined && m.volume.lchown !== undefined
}

describe('mount workloads', function () {
  let t: Teardown
  let m: Mounted
  let local: string

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
    local = await tempDir(t, 'darkfs-local-')
  })
  afterEach(async function () { await t.run() })

  it('git init, commit, clone and log', async function () {
    const git = 'git -c user.name=t -c user.email=t@example.org -c init.defaultBranch=main'
    const out = await ok(`${git} init -q repo && cd repo && for i in $(seq 1 30); do echo "line $i" > "f$i.txt"; done &&
      mkdir -p src/a && echo 'int main(){}' > src/a/m.c && ${git} add -A && ${git} commit -qm first &&
      echo change >> f1.txt && ${git} commit -qam second && ${git} gc -q && ${git} fsck --strict 2>&1 &&
      cd .. && ${git} clone -q repo clone && cd clone && ${git} log --format=%s && cat f1.txt && git status --porcelain`, { cwd: m.dir })
    assert.equal(out, 'second\nfirst\nline 1\nchange\n')
  })

  it('tar x of a generated source tree restores contents, modes and mtimes', async function () {
    await ok(`mkdir -p src && cd src && for d in $(seq 1 8); do mkdir -p "dir$d/sub"; for f in $(seq 1 25); do
        head -c $((d * f * 37)) /dev/urandom > "dir$d/file$f.c"; done; ln -s ../file1.c "dir$d/sub/link"; done &&
      chmod 750 dir2 && chmod 600 dir3/file3.c && chmod 755 dir4/file4.c &&
      find . -exec touch -h -d '2015-06-07 08:09:10.5' {} + && cd .. && tar --format=posix -cf src.tar src`, { cwd: local })
    await ok(`tar xpf "${local}/src.tar"`, { cwd: m.dir })
    // directory sizes are the filesystem's own business: compared for everything else
    // symlink times need VolumeApi.lutimes (see symlinkAttrs below)
    const linkTime = symlinkAttrs(m) ? ' %TY-%Tm-%Td %TH:%TM:%TS' : ''
    const list = '(find src -type d -printf "%p %y %m %TY-%Tm-%Td %TH:%TM:%TS\\n"; find src -type f -printf "%p %y %m %s %TY-%Tm-%Td %TH:%TM:%TS\\n"; ' +
      `find src -type l -printf "%p %y %m %s${linkTime} %l\\n") | sort`
    const expected = await ok(list, { cwd: local })
    const actual = await ok(list, { cwd: m.dir })
    assert.equal(actual, expected)
    await ok(`diff -r --no-dereference "${local}/src" src`, { cwd: m.dir })
  })

  it('make builds and rebuilds a small C program', async function () {
    await ok(`mkdir proj && cd proj && printf '#include <stdio.h>\\nint add(int a, int b);\\nint main(void){printf("%%d\\\\n", add(2, 3));return 0;}\\n' > main.c &&
      printf 'int add(int a, int b){return a + b;}\\n' > add.c &&
      printf 'prog: main.o add.o\\n\\tcc -o prog main.o add.o\\n%%.o: %%.c\\n\\tcc -O1 -c $< -o $@\\nclean:\\n\\trm -f prog *.o\\n' > Makefile`, { cwd: m.dir })
    assert.equal(await ok('make -s && ./prog', { cwd: `${m.dir}/proj` }), '5\n')
    assert.equal(await ok('make -q; echo $?', { cwd: `${m.dir}/proj` }), '0\n')
    await ok('sleep 0.01; printf "int add(int a, int b){return a * b;}\\n" > add.c; touch -d "+2 seconds" add.c', { cwd: `${m.dir}/proj` })
    assert.equal(await ok('make -s && ./prog', { cwd: `${m.dir}/proj` }), '6\n')
  })

  it('sqlite3: 10,000 inserts in a transaction pass PRAGMA integrity_check', async function () {
    const out = await ok(`sqlite3 db.sqlite "PRAGMA journal_mode=DELETE; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
      BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
      INSERT INTO t (v) SELECT printf('value %d %s', i, hex(randomblob(20))) FROM n; COMMIT;
      CREATE INDEX tv ON t (v);" &&
      for i in $(seq 1 20); do echo "INSERT INTO t (v) VALUES ('single $i');"; done | sqlite3 db.sqlite &&
      sqlite3 db.sqlite "PRAGMA integrity_check; SELECT count(*) FROM t; SELECT v FROM t WHERE id = 10020;" && ls`, { cwd: m.dir })
    assert.equal(out, 'delete\nok\n10020\nsingle 20\ndb.sqlite\n')
  })

  it('cp -a preserves modes, owners, times, symlinks and hard links', async function () {
    await ok(`mkdir -p tree/a/b && echo one > tree/a/one && chmod 640 tree/a/one && echo two > tree/a/b/two &&
      chmod 4755 tree/a/b/two && ${symlinkAttrs(m) ? 'ln -s ../one tree/a/b/sym &&' : ''} ln tree/a/one tree/hard && chown 1001:1002 tree/a/b/two &&
      touch -h -d '2012-03-04 05:06:07.123456789' tree/a/one tree/a/b/* tree/a/b tree/a tree`, { cwd: local })
    await ok(`cp -a "${local}/tree" tree && cp -a tree tree2`, { cwd: m.dir })
    const list = '(find tree -type d -printf "%p %y %m %u:%g %n %T@\\n"; find tree ! -type d -printf "%p %y %m %u:%g %n %s %T@ %l\\n") | sort'
    const expected = await ok(list, { cwd: local })
    assert.equal(await ok(list, { cwd: m.dir }), expected)
    assert.equal(await ok(`${list.replaceAll('find tree', 'find tree2')} | sed 's/^tree2/tree/'`, { cwd: m.dir }), expected)
    const inodes = await ok('stat -c %i tree2/a/one tree2/hard', { cwd: m.dir })
    const [a, b] = inodes.trim().split('\n')
    assert.equal(a, b)
  })

  it('chown -h and touch -h act on a symlink itself (VolumeApi.lchown/lutimes)', async function () {
    if (!symlinkAttrs(m)) this.skip() // the Volume lacks lchown/lutimes: the mount answers ENOTSUP
    const out = await ok(`echo x > f; ln -s f s; chown -h 7:8 s; touch -h -d '2010-01-01 00:00:00.25Z' s;
      stat -c '%u:%g %y' s; stat -c '%u:%g' f`, { cwd: m.dir })
    assert.equal(out, '7:8 2010-01-01 00:00:00.250000000 +0000\n0:0\n')
  })
})
