# The store's view of flash: a folder of small files, with append and atomic replace.
# On the ESP32 this is littlefs (rename is atomic across power loss; a file's data is
# committed on close; directory changes are committed by the operation itself); on the host
# it is a plain folder, made crash-safe the way Linux requires: fsync the file, rename,
# fsync the directory (a rename or a new file is durable only once its directory is).
# Tests wrap it to cut power.
import os

try:
    _fsync = os.fsync        # CPython: make the host folder as durable as flash
except AttributeError:       # MicroPython: close() commits on littlefs
    _fsync = None


def _fsync_dir(path):
    """Make the directory entries of path durable (CPython on POSIX; no-op elsewhere)."""
    if _fsync is None:
        return
    try:
        fd = os.open(path, getattr(os, "O_RDONLY", 0))
    except (OSError, AttributeError):     # a platform that cannot open directories
        return
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _join(root, name):
    return root + "/" + name


class FolderFs:
    def __init__(self, root):
        self.root = root
        self.writes = 0          # durable write operations, for the benchmarks
        self.bytes_written = 0

    def ensure(self):
        try:
            os.mkdir(self.root)
        except OSError:
            return
        parent = self.root.rpartition("/")[0]
        _fsync_dir(parent or ".")

    def listdir(self):
        try:
            return os.listdir(self.root)
        except OSError:
            return []

    def exists(self, name):
        try:
            os.stat(_join(self.root, name))
            return True
        except OSError:
            return False

    def size(self, name):
        return os.stat(_join(self.root, name))[6]

    def open_read(self, name):
        return open(_join(self.root, name), "rb")

    def _write(self, name, chunks, mode):
        size = 0
        with open(_join(self.root, name), mode) as f:
            for chunk in chunks:
                f.write(chunk)
                size += len(chunk)
            if _fsync is not None:
                f.flush()
                _fsync(f.fileno())
        self.writes += 1
        self.bytes_written += size

    def append(self, name, data):
        new = _fsync is not None and not self.exists(name)
        self._write(name, (data,), "ab")
        if new:
            _fsync_dir(self.root)     # a new file's entry is durable only with its dir

    def replace(self, name, chunks):
        """Atomically replace name with the concatenated chunks: temp file (fsynced), then
        rename, then fsync of the folder so the rename itself survives a crash."""
        tmp = name + ".tmp"
        self._write(tmp, chunks, "wb")
        os.rename(_join(self.root, tmp), _join(self.root, name))
        _fsync_dir(self.root)

    def remove(self, name):
        try:
            os.remove(_join(self.root, name))
        except OSError:
            return
        _fsync_dir(self.root)
