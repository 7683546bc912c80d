"""`make demo`: the offline parcel locker in two minutes, on the simulator.

Every step is a real `lockerctl` command; the story prints each command and its output, so a
new user can type the same commands afterwards. Everything lives in ./state/demo (the
simulator's flash, the operator's key store, the courier's credential): gitignored, and
wiped at the start of each run (DEMO_DIR names another folder: `make bench` runs the demo at
many heap sizes, tools/bench/run.py)."""
import json
import os
import re
import shutil
import subprocess
import sys

from lockerctl import sim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.abspath(os.environ.get("DEMO_DIR") or os.path.join(ROOT, "state", "demo"))
STATE = os.path.join(DEMO, "locker")
KEYS = os.path.join(DEMO, "keys")
CRED = os.path.join(DEMO, "courier-42.cred.json")


def lockerctl_argv():
    """The installed console script next to this Python, else the module itself."""
    script = os.path.join(os.path.dirname(sys.executable), "lockerctl")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "import sys; from lockerctl.cli import main; "
            "sys.exit(main())"]


def env():
    e = dict(os.environ, LOCKER_STATE=STATE, LOCKERCTL_HOME=KEYS)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(ROOT, "tools"),
                                                    e.get("PYTHONPATH")]))
    return e


def step(title, *args, expect=0, show=True):
    """Run one lockerctl command, print it and its output; stop the demo if it fails."""
    print("\n== %s" % title)
    print("$ lockerctl %s" % " ".join(args))
    done = subprocess.run(lockerctl_argv() + list(args), cwd=ROOT, env=env(),
                          capture_output=True, text=True)
    out = (done.stdout + done.stderr).rstrip()
    if show and out:
        print("   " + out.replace("\n", "\n   "))
    if done.returncode != expect:
        if not show:
            print("   " + out.replace("\n", "\n   "))
        raise SystemExit("demo: `lockerctl %s` exited %d (expected %d)"
                         % (" ".join(args), done.returncode, expect))
    return done.stdout


def quiet_json(*args):
    done = subprocess.run(lockerctl_argv() + list(args) + ["--json"], cwd=ROOT, env=env(),
                          capture_output=True, text=True)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def main():
    try:
        heap = sim.sim_heap()
    except ValueError as e:                   # e.g. SIM_HEAP=abc: say so, not MicroPython
        print("demo: %s" % e, file=sys.stderr)
        return 2
    if os.path.isdir(STATE) and sim.running_pid(STATE):
        quiet_json("sim", "stop")                 # a previous demo left its simulator on
    shutil.rmtree(DEMO, ignore_errors=True)
    os.makedirs(DEMO)
    print("Offline parcel locker demo. The firmware runs on the real MicroPython unix port with")
    print("a capped heap (SIM_HEAP=%s); a loopback socket stands in for Bluetooth LE."
          % heap)
    print("Files: %s   (export LOCKER_STATE=%s LOCKERCTL_HOME=%s to follow along)"
          % (os.path.relpath(DEMO, ROOT), os.path.relpath(STATE, ROOT),
             os.path.relpath(KEYS, ROOT)))
    try:
        story()
    finally:
        if sim.running_pid(STATE):               # halted or not: never leave it running
            quiet_json("sim", "stop")
    print("\nDemo finished. Try the commands yourself: `lockerctl --help`.")
    web()
    return 0


def web():
    """The phone app on the same locker: served with a relay to the simulator. Runs until
    Ctrl-C when a person is at the terminal (DEMO_WEB=0 skips it); otherwise says how."""
    if not os.path.exists(os.path.join(ROOT, "build", "webapp", "index.html")):
        print("(`make webapp` builds the phone app; then `lockerctl sim web` serves it)")
        return
    cred = os.path.relpath(CRED, ROOT)
    if not sys.stdin.isatty() or os.environ.get("DEMO_WEB") == "0":
        print("The phone app: `lockerctl sim start`, then `lockerctl sim web`, open "
              "http://127.0.0.1:8080 and load the courier credential %s." % cred)
        return
    step("The phone app: power the locker on again", "sim", "start", "--port", "0")
    print("\n== The courier and recipient web app, talking to this simulator through a local "
          "relay (on a phone it uses Bluetooth). As the courier, load %s." % cred)
    try:
        subprocess.run(lockerctl_argv() + ["sim", "web", "--port", "8080"], cwd=ROOT, env=env())
    except KeyboardInterrupt:
        pass
    finally:
        quiet_json("sim", "stop")


def story():
    step("The operator provisions a new locker: a locker id and a master secret that only the "
         "locker and the operator's key store ever hold", "provision", "--layout", "S*4,M*4,L*2")
    step("Power on the locker (the simulator boots the firmware from its state folder)",
         "sim", "start", "--port", "0")
    step("The operator issues a courier credential: scoped, expiring, revocable; the master "
         "secret stays home", "credential", "issue", "--courier", "courier-42", "--valid", "7d",
         "--out", os.path.relpath(CRED, ROOT))
    out = step("The courier deposits a medium parcel over the (simulated) radio: the locker "
               "picks the smallest free slot that fits, opens it and answers with the slot "
               "and its deposit time; the phone derives the pickup code offline",
               "deposit", "--credential", os.path.relpath(CRED, ROOT), "--size", "M")
    slot = re.search(r"^slot (\d+) ", out, re.M)
    code = re.search(r"pickup code\s+(\d{3}-\d{5}-\d{5})", out)
    if not (slot and code):
        raise SystemExit("demo: could not read the slot and code from the deposit answer")
    slot, code = slot.group(1), code.group(1)
    wait_lock_released(slot)
    step("The courier puts the parcel in and closes the door", "sim", "door", slot, "close")
    step("The recipient, who got the code %s by text message, types it at the locker: the "
         "locker finds the slot FROM the code, checks it against its own clock, opens the "
         "door" % code, "pickup", code)
    wait_lock_released(slot)
    step("The recipient takes the parcel and closes the door", "sim", "door", slot, "close")
    step("A wrong code is refused (one guess, counted against the slot's and the locker's "
         "journalled budgets)",
         "pickup", "%s-00000-00000" % slot.zfill(3), expect=1)
    step("The slot grid: every slot free again, doors closed, and the firmware's heap as the "
         "simulator measures it", "sim", "status")
    step("The operator reads the tamper-evident audit log over the same protocol and checks "
         "its hash chain with the master secret", "audit", "--verify")
    step("Power off", "sim", "stop")


def wait_lock_released(slot):
    """Doors swing open during the latch pulse: wait for it before a person closes one."""
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = quiet_json("sim", "status")
        s = st.get("slots", [])[int(slot) - 1] if st.get("slots") else None
        if s and s["door"] == "open" and not s["lock_energised"]:
            return
        time.sleep(0.05)
    raise SystemExit("demo: slot %s never opened" % slot)


if __name__ == "__main__":
    sys.exit(main())
