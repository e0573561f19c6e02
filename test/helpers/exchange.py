# renameat2(A, B, RENAME_EXCHANGE): swaps two names atomically (coreutils' mv --exchange is newer
# than Debian 12's). Exits 0, or 1 with the errno's name on stderr.
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
AT_FDCWD = -100
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[1]), AT_FDCWD, os.fsencode(sys.argv[2]), RENAME_EXCHANGE) != 0:
    e = ctypes.get_errno()
    print(errno.errorcode.get(e, str(e)), file=sys.stderr)
    sys.exit(1)
