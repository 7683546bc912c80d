# The journal's anchor in NVS: how far the journal got and the latest time the locker saw,
# kept where the journal's own files cannot take it along (docs/adr/0008-journal-anchor.md).
# On the ESP32 `nvs` is esp32.NVS("locker") (ESP-IDF NVS: each set_i32 + commit appends one
# 32-byte entry to a log-structured page; a power cut leaves the old or the new value, never
# a mix); in the simulator and the tests it is sim_nvs.SimNvs, which commits the same way.
#
# Keys (i32 each): "id" identity of the provisioning the anchor belongs to, "seq" number of
# the last durable journal record, "t" a Unix time the locker had reached (stored as u32
# bits: NVS has no u32 getter). Writes: one entry per journal record, one per ANCHOR_TIME_S
# of running time (core/locker.py); nothing else.
from micropython import const

_U32 = const(0xFFFFFFFF)
_TIME_PERIOD_S = const(60)    # keep_time() writes "t" at most this often (core/locker.py)


def _to_i32(v):
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


class NvsAnchor:
    def __init__(self, nvs):
        self._nvs = nvs
        self.writes = 0             # NVS entries written since boot (docs, benchmarks)
        self._t = 0                 # the time last written
        self.held = 0               # the journal seq "seq" holds (-1: to be rewritten)

    def _get(self, key):
        try:
            return self._nvs.get_i32(key) & _U32
        except OSError:             # ESP_ERR_NVS_NOT_FOUND: never written
            return None

    def read(self):
        """(ident, seq, t): ints, or None each for a key never written."""
        t = self._get("t")
        self._t = t or 0
        return self._get("id"), self._get("seq"), t

    def _set(self, key, value):
        self._nvs.set_i32(key, _to_i32(value))
        self._nvs.commit()
        self.writes += 1

    def write_seq(self, seq):
        """Durable when it returns; raises OSError (NVS full or failing)."""
        self._set("seq", seq)
        self.held = seq

    def sync(self, seq):
        """Make the anchor hold journal record seq (called after every durable append, and
        before the next one). Raises OSError."""
        if self.held != seq:
            self.write_seq(seq)

    def write_time(self, t):
        self._set("t", t)
        self._t = t

    def keep_time(self, now):
        """Called from the locker's tick (every 10 s): write the time when _TIME_PERIOD_S
        has passed since the last write. A failing NVS is left for the next tick (the
        journal's hourly floor still holds)."""
        if now - self._t >= _TIME_PERIOD_S:
            try:
                self.write_time(now)
            except OSError:
                pass

    def reset(self, ident):
        """A new provisioning: forget the old journal's position, then claim the anchor."""
        self.write_seq(0)
        self._set("id", ident)
