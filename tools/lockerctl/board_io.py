"""Files onto a real board over its USB serial port, through mpremote: the firmware image
(`make deploy`), the board profile, and the provisioning files (`lockerctl provision --port`).

Paths on the board are the ones firmware/targets/board_esp32.py reads: /board.json, and the locker's
folder /locker with locker.json, secret.bin and the journal in store/."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

PROFILE_PATH = "/board.json"
DATA_DIR = "/locker"


class BoardIOError(Exception):
    pass


def mpremote_binary():
    here = os.path.join(os.path.dirname(sys.executable), "mpremote")
    exe = os.environ.get("MPREMOTE") or (here if os.path.exists(here)
                                         else shutil.which("mpremote"))
    if not exe:
        raise BoardIOError("mpremote not found: run `make venv` (or pip install mpremote)")
    return exe


class Board:
    """One board on a serial port. dry_run=True only records the commands."""

    def __init__(self, port, mpremote=None, dry_run=False, echo=None):
        self.port = port
        self.exe = mpremote or (None if dry_run else mpremote_binary()) or "mpremote"
        self.dry_run = dry_run
        self.commands = []
        self.echo = echo
        self._tmp = tempfile.mkdtemp(prefix="board-io-")

    def run(self, *args):
        cmd = [self.exe, "connect", self.port] + [str(a) for a in args]
        self.commands.append(cmd)
        if self.echo:
            self.echo(" ".join(cmd))
        if self.dry_run:
            return ""
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise BoardIOError("`%s` failed: %s" % (" ".join(cmd),
                                                    (done.stderr or done.stdout).strip()))
        return done.stdout

    def put(self, local, remote):
        self.run("fs", "cp", local, ":" + remote)

    def put_many(self, files, remote_dir="/"):
        """files: local paths copied into remote_dir in ONE mpremote session."""
        if files:
            self.run("fs", "cp", *files, ":" + remote_dir.rstrip("/") + "/")

    def put_tree(self, paths, remote_dir="/"):
        """paths: local files and folders copied recursively into remote_dir, ONE session."""
        if paths:
            self.run("fs", "cp", "-r", *paths, ":" + remote_dir.rstrip("/") + "/")

    def write_bytes(self, remote, data):
        local = os.path.join(self._tmp, os.path.basename(remote))
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            self.put(local, remote)
        finally:
            os.remove(local)

    def exec(self, code):
        return self.run("exec", code)

    def mkdir(self, remote):
        self.exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % remote)

    def remove_if_present(self, paths):
        if paths:
            self.exec("import os\nfor p in %r:\n try:\n  os.remove(p)\n except OSError:\n"
                      "  pass" % (list(paths),))

    def mip_install(self, *packages):
        """`mpremote mip install` of micropython-lib packages (their requirements too)."""
        self.run("mip", "install", *packages)

    def reset(self):
        self.run("reset")

    def close(self):
        shutil.rmtree(self._tmp, ignore_errors=True)


def write_profile(board, profile):
    board.write_bytes(PROFILE_PATH, json.dumps(profile).encode())


def write_provisioning(board, locker_cfg, secret, wipe_store=False):
    """locker.json + secret.bin into /locker (secret via a 0600 temp file, then removed)."""
    if len(secret) != 32:
        raise BoardIOError("the master secret is 32 bytes")
    board.mkdir(DATA_DIR)
    if wipe_store:
        board.exec("import os\nd=%r\ntry:\n for n in os.listdir(d):\n  os.remove(d+'/'+n)\n"
                   "except OSError:\n pass" % (DATA_DIR + "/store"))
    board.write_bytes(DATA_DIR + "/locker.json", json.dumps(locker_cfg).encode())
    board.write_bytes(DATA_DIR + "/secret.bin", secret)
