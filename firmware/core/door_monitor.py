# Tells door events apart (Open-Locker: "relay fired is not door opened"):
#   jam         commanded open, sensor never saw it open within jam_ms
#   left_open   open longer than left_open_ms
#   uncommanded the door opened with no command (forced, or a failed lock)
#   found_open  open at boot
#   closed      a door that was open is closed again
# Pure bookkeeping over a read_door(sid) function; the locker logs the events.
from micropython import const

_JAM_MS = const(10000)
_LEFT_OPEN_MS = const(120000)


_UNKNOWN = const(2)


class DoorMonitor:
    """Per-door bookkeeping in packed arrays and sparse dicts (heap: 100 doors ~ 0.3 KB)."""

    def __init__(self, count, ticks_diff, jam_ms=_JAM_MS, left_open_ms=_LEFT_OPEN_MS):
        self._last = bytearray([_UNKNOWN] * count)
        self._expect = {}          # sid -> (tick by which it must open, purpose)
        self._purpose = {}         # sid -> what the last commanded open was for
        self._opened_at = {}       # sid -> tick it opened (while open)
        self._reported = set()     # sids already reported as left open
        self._diff = ticks_diff
        self.jam_ms = jam_ms
        self.left_open_ms = left_open_ms

    def commanded(self, sid, purpose, now_ms):
        self._expect[sid] = now_ms + self.jam_ms
        self._purpose[sid] = purpose

    def awaiting(self, sid):
        return sid in self._expect

    def poll(self, read_door, now_ms):
        """Return [(sid, event, purpose)] since the last poll."""
        events = []
        for i in range(len(self._last)):
            sid = i + 1
            cur = read_door(sid)
            if cur is None:
                self._expect.pop(sid, None)     # no sensor: nothing to tell apart
                continue
            last = self._last[i]
            if int(cur) != last:
                if cur:
                    if sid in self._expect:
                        del self._expect[sid]
                    elif last == _UNKNOWN:
                        events.append((sid, "found_open", ""))
                    else:
                        events.append((sid, "uncommanded", ""))
                    self._opened_at[sid] = now_ms
                elif last == 1:
                    events.append((sid, "closed", self._purpose.pop(sid, "")))
                    self._opened_at.pop(sid, None)
                    self._reported.discard(sid)
                self._last[i] = int(cur)
            if cur and sid in self._expect:
                del self._expect[sid]   # commanded while already open: nothing jammed
            due = self._expect.get(sid)
            if due is not None and self._diff(now_ms, due) >= 0:
                events.append((sid, "jam", self._purpose.pop(sid, "")))
                del self._expect[sid]
            opened = self._opened_at.get(sid)
            if (cur and opened is not None and sid not in self._reported
                    and self._diff(now_ms, opened) >= self.left_open_ms):
                events.append((sid, "left_open", self._purpose.get(sid, "")))
                self._reported.add(sid)
        return events
