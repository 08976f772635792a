"""A FUSE filesystem whose files never answer a read: what a hung pmxcfs or a stuck network mount looks like.

Usage: hanging-fs.py <mountpoint>. Every name resolves to a regular file; opening it succeeds and read() waits
until the filesystem goes away. Prints "ready" once mounted, then "read <path>" for every read it holds.
"""
import errno
import stat
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations


class Hanging(Operations):
    def __init__(self):
        self.unmounted = threading.Event()

    def getattr(self, path, fh=None):
        now = time.time()
        if path == '/':
            return {'st_mode': stat.S_IFDIR | 0o755, 'st_nlink': 2, 'st_ctime': now, 'st_mtime': now, 'st_atime': now}
        return {'st_mode': stat.S_IFREG | 0o644, 'st_nlink': 1, 'st_size': 4096, 'st_ctime': now, 'st_mtime': now, 'st_atime': now}

    def readdir(self, path, fh):
        return ['.', '..']

    def open(self, path, flags):
        return 0

    def read(self, path, size, offset, fh):
        print('read ' + path, flush=True)
        self.unmounted.wait()
        raise FuseOSError(errno.EIO)

    def destroy(self, path):
        self.unmounted.set()


def main():
    mountpoint = sys.argv[1]
    threading.Timer(0.5, lambda: print('ready', flush=True)).start()
    FUSE(Hanging(), mountpoint, foreground=True, nothreads=False, allow_other=True, direct_io=True)


if __name__ == '__main__':
    main()
