"""The operator's key store: one JSON file per locker holding its master secret.

The master secret never leaves the locker and this store (docs/security.md), so the files
are private to the operator (file 0600, folder 0700) and written atomically (temp + rename)
under a lock: two `lockerctl` runs must never hand out the same credential serial or admin
message counter."""
import contextlib
import json
import os
import time

try:
    import fcntl
except ImportError:          # not on Windows: single-user tool, no lock there
    fcntl = None

FILE_MODE = 0o600
DIR_MODE = 0o700
KINDS = {1: "courier", 2: "technician"}


class KeyStoreMissing(Exception):
    """No key store entry (or file) for what was asked: the operator must provision first."""


def default_home():
    return os.environ.get("LOCKERCTL_HOME") or os.path.join(
        os.path.expanduser("~"), ".config", "lockerctl")


def write_private(path, text):
    """Write a file only its owner can read, atomically (a crash leaves old or new)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)          # the umask must not widen it
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class KeyStore:
    def __init__(self, home=None):
        self.home = home or default_home()

    # ---- files --------------------------------------------------------------------
    def _ensure_dir(self):
        os.makedirs(self.home, mode=DIR_MODE, exist_ok=True)
        if os.stat(self.home).st_mode & 0o077:
            os.chmod(self.home, DIR_MODE)

    def path(self, locker_id):
        return os.path.join(self.home, "%s.json" % locker_id.lower())

    @contextlib.contextmanager
    def _locked(self):
        self._ensure_dir()
        fd = os.open(os.path.join(self.home, ".lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            if fcntl:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def lockers(self):
        try:
            names = os.listdir(self.home)
        except OSError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and len(n) == 21)

    def load(self, locker_id):
        try:
            with open(self.path(locker_id)) as f:
                return json.load(f)
        except FileNotFoundError:
            raise KeyStoreMissing("no key for locker %s in %s: provision it first "
                                  "(`lockerctl provision`)" % (locker_id, self.home))

    def _save(self, entry):
        write_private(self.path(entry["locker_id"]), json.dumps(entry, indent=1, sort_keys=True))

    # ---- what the CLI asks for ----------------------------------------------------
    def create(self, locker_id, master, layout):
        with self._locked():
            if os.path.exists(self.path(locker_id.hex())):
                raise FileExistsError("locker %s already in the key store" % locker_id.hex())
            entry = {"locker_id": locker_id.hex(), "master": master.hex(), "layout": layout,
                     "created": int(time.time()), "next_serial": 1, "admin_seq": 0,
                     "credentials": {}, "pending_admin": []}
            self._save(entry)
            return entry

    def master(self, locker_id):
        return bytes.fromhex(self.load(locker_id)["master"])

    def record_credential(self, locker_id, kind, holder, valid_s, flags, issue):
        """Take the next serial and remember the credential; issue(serial) builds it."""
        with self._locked():
            entry = self.load(locker_id)
            serial = entry["next_serial"]
            cred = issue(serial)
            entry["next_serial"] = serial + 1
            c = cred.credential
            entry["credentials"][str(serial)] = {
                "kind": KINDS.get(kind, kind), "holder": holder, "issued_at": c.issued_at,
                "not_after": c.not_after, "flags": flags}
            self._save(entry)
            return cred

    def credential_info(self, locker_id, serial):
        return self.load(locker_id)["credentials"].get(str(serial))

    def next_admin(self, locker_id, build):
        """Take the next admin counter; build(seq) makes the signed message, kept pending
        until delivered (a later message would make an older one a replay)."""
        with self._locked():
            entry = self.load(locker_id)
            seq = entry["admin_seq"] + 1
            blob = build(seq)
            entry["admin_seq"] = seq
            entry["pending_admin"].append(blob.hex())
            self._save(entry)
            return seq, blob

    def pending_admin(self, locker_id):
        return [bytes.fromhex(h) for h in self.load(locker_id)["pending_admin"]]

    def delivered(self, locker_id, blob):
        with self._locked():
            entry = self.load(locker_id)
            if blob.hex() in entry["pending_admin"]:
                entry["pending_admin"].remove(blob.hex())
                self._save(entry)
