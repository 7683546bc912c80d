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

After the cut every further operation raises PowerCut too: the board is off. Reboot by
building a new locker on the plain inner fs. PowerCut derives from BaseException so no
`except Exception` / `except OSError` in the firmware can swallow it, exactly like a real
power loss.
"""
import random

MODES = ("lost", "torn", "done")


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
    def __init__(self, inner, cut_at=None, mode="lost", tear=None):
        """inner: a FolderFs (or anything with its interface).

        tear: how many bytes of an interrupted write survive in "torn" mode: an int, a
        random.Random (uniform 0..len-1), or None for half the data."""
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % (MODES,))
        self.inner = inner
        self.cut_at = cut_at
        self.mode = mode
        self.tear = tear
        self.points = 0           # write points reached so far (including the cut one)
        self.log = []             # (op, name) per write point, for reports and debugging
        self.dead = False

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
        if self._point("append", name):
            if self.mode == "torn":
                kept = data[:self._torn_len(len(data))]
                if kept:
                    self.inner.append(name, kept)
            elif self.mode == "done":
                self.inner.append(name, data)
            self._cut()
        self.inner.append(name, data)

    def replace(self, name, chunks):
        data = b"".join(bytes(c) for c in chunks)
        tmp = name + ".tmp"
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
        self.inner.replace(name, (data,))

    def remove(self, name):
        if self._point("remove", name):
            if self.mode == "done":
                self.inner.remove(name)
            self._cut()
        self.inner.remove(name)

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
