# The simulator's NVS partition (esp32.NVS stand-in): fake hardware like sim_hw, in its own
# module so that boards and tests that do not keep an anchor do not load it.
class SimNvs:
    """esp32.NVS as the locker uses it (get_i32/set_i32/commit), kept in a small file outside
    the store folder (one "key value" line per key), or in RAM with path None (tests).

    Like ESP-IDF NVS, a committed key survives a power cut and a cut during commit leaves
    the old or the new values (temp file + rename); get_i32 of a key never written raises
    OSError (ESP_ERR_NVS_NOT_FOUND). fail_writes makes every commit raise OSError (NVS full).
    No json: the real NVS costs the heap nothing, this stand-in as little as it can."""

    def __init__(self, path=None):
        self._path = path
        self._saved = {}
        self._pending = {}
        self.fail_writes = False
        self.commits = 0
        if path is not None:
            try:
                with open(path) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        self._saved[k] = int(v)
            except (OSError, ValueError):
                self._saved = {}

    def get_i32(self, key):
        if key in self._pending:
            return self._pending[key]
        if key not in self._saved:
            raise OSError(2, "ESP_ERR_NVS_NOT_FOUND")
        return self._saved[key]

    def set_i32(self, key, value):
        if not -2 ** 31 <= value < 2 ** 31:
            raise ValueError("i32 out of range")
        self._pending[key] = value

    def discard(self):
        """Drop uncommitted changes (a power cut before commit)."""
        self._pending = {}

    def erase_key(self, key):
        self._pending.pop(key, None)
        self._saved.pop(key, None)

    def commit(self):
        if self.fail_writes:
            self._pending = {}
            raise OSError(28, "ESP_ERR_NVS_NOT_ENOUGH_SPACE")
        saved = self._saved
        for k in self._pending:
            saved[k] = self._pending[k]
        self._pending = {}
        if self._path is not None:
            import os
            with open(self._path + ".tmp", "w") as f:
                for k in saved:
                    f.write("%s %d\n" % (k, saved[k]))
            os.rename(self._path + ".tmp", self._path)
        self.commits += 1
