# The journal's anchor in NVS: how far the journal got and the latest time the locker saw,
# kept where the journal's own files cannot take it along (docs/adr/0005-journal-anchor.md).
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


def _to_i32(v):
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


class NvsAnchor:
    def __init__(self, nvs):
        self._nvs = nvs
        self.writes = 0             # NVS entries written since boot (docs, benchmarks)

    def _get(self, key):
        try:
            return self._nvs.get_i32(key) & _U32
        except OSError:             # ESP_ERR_NVS_NOT_FOUND: never written
            return None

    def read(self):
        """(ident, seq, t): ints, or None each for a key never written."""
        return self._get("id"), self._get("seq"), self._get("t")

    def _set(self, key, value):
        self._nvs.set_i32(key, _to_i32(value))
        self._nvs.commit()
        self.writes += 1

    def write_seq(self, seq):
        """Durable when it returns; raises OSError (NVS full or failing)."""
        self._set("seq", seq)

    def write_time(self, t):
        self._set("t", t)

    def reset(self, ident):
        """A new provisioning: forget the old journal's position, then claim the anchor."""
        self._set("seq", 0)
        self._set("id", ident)
