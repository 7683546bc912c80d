"""Power cuts on demand: a FolderFs wrapper that dies at the k-th write point.

Write points are the operations that change flash: an append, the temp-file write of a
replace, the rename of a replace, a remove. `FaultFs(inner)` with cut_at=None only counts
them (run a scenario once to learn how many there are); `FaultFs(inner, cut_at=k, mode=m)`
raises PowerCut at write point k (1-based). What the interrupted operation leaves behind:

  "lost"  nothing reaches flash (littlefs: an append is all-or-nothing, a rename either
          happened or not). At a replace's rename point this is the "temp file written but
          not renamed" case; at its temp-write point, no temp file at all.
  "torn"  a prefix of the data reaches flash (a POSIX file system without atomic append);
          rename and remove are atomic everywhere, so there it is the same as "lost".
  "done"  the operation completed and power died right after, before the caller could act
          on it (e.g. the deposit record is durable but the door never moved, no answer).

The journal's anchor in NVS is a write point too: `fs.nvs(inner)` wraps an NVS object
(sim_nvs.SimNvs) so that its commit() counts in the same sequence ("nvs-commit"); NVS is
never torn (each entry has a CRC), so "torn" leaves the old value like "lost".

A full disk is not a power cut: with capacity=N the fs has N bytes free; a write that does
not fit lands its first bytes (a SHORT write: the part that fit) and raises
OSError(ENOSPC), and the board keeps running. remove() gives the space back.

After the cut every further operation raises PowerCut too: the board is off. Reboot by
building a new locker on the plain inner fs. PowerCut derives from BaseException so no
`except Exception` / `except OSError` in the firmware can swallow it, exactly like a real
power loss.
"""
import random

MODES = ("lost", "torn", "done")
ENOSPC = 28


class PowerCut(BaseException):
    """The power failed at a write point."""

    def __init__(self, point, op, name, mode):
        BaseException.__init__(self, "power cut at write point %d (%s %s, %s)"
                               % (point, op, name, mode))
        self.point = point
        self.op = op
        self.name = name
        self.mode = mode


class FaultFs:
    def __init__(self, inner, cut_at=None, mode="lost", tear=None, capacity=None):
        """inner: a FolderFs (or anything with its interface).

        tear: how many bytes of an interrupted write survive in "torn" mode: an int, a
        random.Random (uniform 0..len-1), or None for half the data.
        capacity: free bytes (None: unlimited); see the module docstring."""
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % (MODES,))
        self.inner = inner
        self.cut_at = cut_at
        self.mode = mode
        self.tear = tear
        self.points = 0           # write points reached so far (including the cut one)
        self.log = []             # (op, name) per write point, for reports and debugging
        self.dead = False
        self.capacity = capacity
        self.short_writes = 0     # writes that hit the full disk part-way

    # ---- reads pass straight through --------------------------------------------------

    def ensure(self):
        self._alive()
        self.inner.ensure()

    def listdir(self):
        self._alive()
        return self.inner.listdir()

    def exists(self, name):
        self._alive()
        return self.inner.exists(name)

    def size(self, name):
        self._alive()
        return self.inner.size(name)

    def open_read(self, name):
        self._alive()
        return self.inner.open_read(name)

    def __getattr__(self, attr):          # writes / bytes_written counters of the inner fs
        return getattr(self.inner, attr)

    # ---- write points -----------------------------------------------------------------

    def append(self, name, data):
        data = bytes(data)
        if self._full(len(data)):
            self._point("append", name)
            return self._short(name, data)
        if self._point("append", name):
            if self.mode == "torn":
                kept = data[:self._torn_len(len(data))]
                if kept:
                    self.inner.append(name, kept)
            elif self.mode == "done":
                self.inner.append(name, data)
            self._cut()
        self.inner.append(name, data)
        if self.capacity is not None:
            self.capacity -= len(data)

    def replace(self, name, chunks):
        data = b"".join(bytes(c) for c in chunks)
        tmp = name + ".tmp"
        if self._full(len(data)):
            self._point("replace-write", tmp)
            self.inner.remove(tmp)
            return self._short(tmp, data)
        if self._point("replace-write", tmp):
            self.inner.remove(tmp)
            if self.mode == "torn":
                self.inner.append(tmp, data[:self._torn_len(len(data))])
            elif self.mode == "done":
                self.inner.append(tmp, data)      # written, the rename is the next point
            self._cut()
        if self._point("replace-rename", name):
            if self.mode == "done":
                self.inner.replace(name, (data,))
            else:                                 # temp file complete, never renamed
                self.inner.remove(tmp)
                self.inner.append(tmp, data)
            self._cut()
        old = self._size(name)
        self.inner.replace(name, (data,))
        if self.capacity is not None:
            self.capacity += old - len(data)

    def remove(self, name):
        if self._point("remove", name):
            if self.mode == "done":
                self.inner.remove(name)
            self._cut()
        old = self._size(name)
        self.inner.remove(name)
        if self.capacity is not None:
            self.capacity += old

    def nvs(self, inner):
        """inner (an NVS object) with its commit() as a write point of this fs."""
        return FaultNvs(self, inner)

    # ---- a full disk --------------------------------------------------------------------

    def _size(self, name):
        return self.inner.size(name) if self.inner.exists(name) else 0

    def _full(self, n):
        self._alive()
        return self.capacity is not None and n > self.capacity

    def _short(self, name, data):
        """The bytes that fit land, then ENOSPC (what a file system does mid-write)."""
        kept = data[:self.capacity]
        if kept:
            self.inner.append(name, kept)
        self.capacity = 0
        self.short_writes += 1
        raise OSError(ENOSPC, "no space left on device (%d of %d bytes written)"
                      % (len(kept), len(data)))

    # ---- machinery --------------------------------------------------------------------

    def _alive(self):
        if self.dead:
            raise PowerCut(self.points, "after-cut", "", self.mode)

    def _point(self, op, name):
        """Count one write point; True when this is the one where power fails."""
        self._alive()
        self.points += 1
        self.log.append((op, name))
        return self.points == self.cut_at

    def _cut(self):
        self.dead = True
        op, name = self.log[-1]
        raise PowerCut(self.points, op, name, self.mode)

    def _torn_len(self, n):
        if n <= 1:
            return 0
        if isinstance(self.tear, random.Random):
            return self.tear.randrange(n)
        if isinstance(self.tear, int):
            return max(0, min(self.tear, n - 1))
        return n // 2


class FaultNvs:
    """An NVS object whose commit() is a write point of a FaultFs (same count, same cut)."""

    def __init__(self, fs, inner):
        self._fs = fs
        self._inner = inner

    def get_i32(self, key):
        self._fs._alive()
        return self._inner.get_i32(key)

    def set_i32(self, key, value):
        self._fs._alive()
        self._inner.set_i32(key, value)

    def commit(self):
        if self._fs._point("nvs-commit", "anchor"):
            if self._fs.mode == "done":
                self._inner.commit()
            else:                                 # the entry never completed: old value
                self._inner.discard()
            self._fs._cut()
        self._inner.commit()
