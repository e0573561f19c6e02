# Runs a JSON list of file-system calls (model.test.ts makes them) under a root directory and
# prints one JSON line per call: its result or errno name, then the tree as lstat shows it
# (type, size of non-directories, nlink, mode bits, symlink target) and fstat of every open fd.
# A last line has the tree with each file's sha256 after every fd is closed. The same list run
# on a plain directory and on a darkfs mount must print the same lines.
#   python3 posix-ops.py ROOT OPS.json      run the calls (ROOT made if missing)
#   python3 posix-ops.py ROOT --walk        print only the final tree line (a missing ROOT is an
#                                           error, exit 1: a walk never makes the tree it reads)
import ctypes
import errno
import hashlib
import json
import os
import stat
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

FLAGS = {'r': os.O_RDONLY, 'w': os.O_WRONLY, 'rw': os.O_RDWR, 'creat': os.O_CREAT, 'excl': os.O_EXCL,
         'trunc': os.O_TRUNC, 'append': os.O_APPEND}


def data(size, seed):
    """size bytes of a pattern fixed by seed (never all zeros, so holes show)."""
    unit = bytes(((seed * 31 + i * 7) % 251) + 1 for i in range(251))
    return (unit * (size // 251 + 1))[:size]


def kind(mode):
    if stat.S_ISDIR(mode):
        return 'dir'
    if stat.S_ISLNK(mode):
        return 'link'
    if stat.S_ISREG(mode):
        return 'file'
    return 'other'


def describe(st):
    k = kind(st.st_mode)
    d = {'t': k, 'mode': oct(stat.S_IMODE(st.st_mode))}
    if k != 'dir':
        d['size'] = st.st_size
        d['nlink'] = st.st_nlink
    return d


def tree(root, hashes):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        out[rel + '/'] = sorted(os.listdir(dirpath))
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            d = describe(st)
            if d['t'] == 'link':
                d['target'] = os.readlink(p)
            elif d['t'] == 'file' and hashes:
                with open(p, 'rb') as f:
                    d['sha'] = hashlib.sha256(f.read()).hexdigest()[:16]
            out[os.path.relpath(p, root)] = d
    return out


def digest(b):
    return {'len': len(b), 'sha': hashlib.sha256(b).hexdigest()[:16]}


def call(op, fds):
    name = op[0]
    if name == 'open':
        _, path, flags, slot = op
        fl = 0
        for f in flags:
            fl |= FLAGS[f]
        if slot in fds:
            os.close(fds.pop(slot))
        fds[slot] = os.open(path, fl, 0o644)
        return slot
    fd = None
    if name in ('close', 'write', 'pwrite', 'read', 'pread', 'ftruncate', 'fsync', 'fdatasync', 'fallocate'):
        if not fds:
            return 'no fd'
        # a slot not open means one of those open, so most calls on fds find one
        if op[1] not in fds:
            op[1] = sorted(fds)[op[1] % len(fds)]
        fd = fds[op[1]]
    if name == 'close':
        return os.close(fds.pop(op[1]))
    if name == 'write':
        return os.write(fd, data(op[2], op[3]))
    if name == 'pwrite':
        return os.pwrite(fd, data(op[3], op[4]), op[2])
    if name == 'read':
        return digest(os.read(fd, op[2]))
    if name == 'pread':
        return digest(os.pread(fd, op[3], op[2]))
    if name == 'ftruncate':
        return os.ftruncate(fd, op[2])
    if name == 'fsync':
        return os.fsync(fd)
    if name == 'fdatasync':
        return os.fdatasync(fd)
    if name == 'fallocate':
        _, _, mode, off, length = op
        if libc.fallocate(fd, mode, off, length) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return 0
    if name == 'truncate':
        return os.truncate(op[1], op[2])
    if name == 'rename':
        return os.rename(op[1], op[2])
    if name == 'unlink':
        return os.unlink(op[1])
    if name == 'mkdir':
        return os.mkdir(op[1], 0o755)
    if name == 'rmdir':
        return os.rmdir(op[1])
    if name == 'link':
        return os.link(op[1], op[2])
    if name == 'symlink':
        return os.symlink(op[1], op[2])
    if name == 'readlink':
        return os.readlink(op[1])
    if name == 'chmod':
        return os.chmod(op[1], op[2])
    if name == 'utimes':
        return os.utime(op[1], (op[2], op[3]), follow_symlinks=False)
    raise ValueError('unknown call ' + name)


def main():
    root = sys.argv[1]
    os.umask(0o022)
    if sys.argv[2] == '--walk':
        # on a mount, a root made here raced the one on its way from a peer (model.test.ts polls
        # host B's copy of a run until it has arrived)
        if not os.path.isdir(root):
            sys.exit('posix-ops.py --walk: no directory ' + root)
        os.chdir(root)
        print(json.dumps({'final': tree('.', True)}, sort_keys=True))
        return
    os.makedirs(root, exist_ok=True)
    os.chdir(root)
    with open(sys.argv[2]) as f:
        ops = json.load(f)
    fds = {}
    for i, op in enumerate(ops):
        try:
            r = {'ok': call(op, fds)}
        except OSError as e:
            r = {'err': errno.errorcode.get(e.errno, str(e.errno))}
        open_fds = {}
        for slot in sorted(fds):
            open_fds[slot] = describe(os.fstat(fds[slot]))
        print(json.dumps({'step': i, 'op': op, 'r': r, 'fds': open_fds, 'tree': tree('.', False)}, sort_keys=True))
    for slot in list(fds):
        os.close(fds.pop(slot))
    print(json.dumps({'final': tree('.', True)}, sort_keys=True))


main()
