# The simulator's flash as an image file formatted with littlefs v2 (vfs.VfsLfs2, the same C
# code the ESP32 port mounts on its partition), through a block device with the ESP32's
# geometry: 4096-byte erase blocks, MicroPython's extended block protocol (littlefs programs
# at an offset and erases with ioctl 6). Used when sim.json has "flash_kb" (`lockerctl sim
# start --flash-image`); the default is a host folder. A SIGKILL (`sim power-cut`) can land
# mid-block like a real power cut; tools/campaigns/mp_littlefs.py cuts at every program.
import os

BLOCK = 4096
MOUNT = "/flash"
_ERASED = b"\xff" * 256      # written 16 times per block: no 4 KB buffer in a small heap


class ImageBlockDevice:
    def __init__(self, path, blocks):
        self.blocks = blocks
        if not _exists(path):
            with open(path, "wb") as f:
                for _ in range(blocks * BLOCK // len(_ERASED)):
                    f.write(_ERASED)
        self._f = open(path, "r+b")

    def readblocks(self, block, buf, offset=0):
        self._f.seek(block * BLOCK + offset)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            self.ioctl(6, block)
            offset = 0
        self._f.seek(block * BLOCK + offset)
        self._f.write(buf)
        self._f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return BLOCK
        if op == 6:
            self._f.seek(arg * BLOCK)
            for _ in range(BLOCK // len(_ERASED)):
                self._f.write(_ERASED)
            self._f.flush()
        return 0


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def mount_image(path, kb):
    """Mount the littlefs image at path (created and formatted when new) on /flash and
    return the folder for the store. kb: partition size (a multiple of 4)."""
    import vfs
    # a duck-typed block device (the stubs name an abstract class MicroPython does not ship)
    bdev = ImageBlockDevice(path, kb * 1024 // BLOCK)
    try:
        fs = vfs.VfsLfs2(bdev)  # pyright: ignore[reportArgumentType]
    except OSError:                  # blank image: format it, as the ESP32 does at first boot
        vfs.VfsLfs2.mkfs(bdev)  # pyright: ignore[reportArgumentType]
        fs = vfs.VfsLfs2(bdev)  # pyright: ignore[reportArgumentType]
    vfs.mount(fs, MOUNT)
    return MOUNT + "/store"
