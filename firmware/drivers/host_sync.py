# CPython only (drivers/flash_fs.py imports it where os.fsync exists): make a host folder's
# directory entries durable. A rename, a new file or a removal survives a crash on Linux
# only once the directory itself is fsynced; littlefs commits those by itself.
import os


def sync_dir(path):
    """fsync the directory at path (POSIX); a platform that cannot open one is skipped."""
    try:
        fd = os.open(path, getattr(os, "O_RDONLY", 0))
    except (OSError, AttributeError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
