# The store's view of flash: a folder of small files, with append and atomic replace.
# On the ESP32 this is littlefs (rename is atomic across power loss; a file's data is
# committed on close; directory changes by the operation itself); on the host it is a plain
# folder made crash-safe the way Linux requires: fsync the file, rename, fsync the folder
# (drivers/host_sync.py). The store creates files only by replace(). Tests wrap it to cut
# power.
import os

try:
    _fsync = os.fsync        # CPython: make the host folder as durable as flash
    from drivers.host_sync import sync_dir as _sync_dir
except AttributeError:       # MicroPython: close() commits on littlefs
    _fsync = _sync_dir = None


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
        if _sync_dir:
            _sync_dir(self.root.rpartition("/")[0] or ".")

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
        self._write(name, (data,), "ab")

    def replace(self, name, chunks):
        """Atomically replace name with the concatenated chunks: temp file, then rename."""
        tmp = name + ".tmp"
        self._write(tmp, chunks, "wb")
        os.rename(_join(self.root, tmp), _join(self.root, name))
        if _sync_dir:
            _sync_dir(self.root)

    def remove(self, name):
        try:
            os.remove(_join(self.root, name))
        except OSError:
            return
        if _sync_dir:
            _sync_dir(self.root)
