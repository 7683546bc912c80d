"""`lockerctl sim ...`: run and drive the simulated locker (start, stop, status, clock,
power-cut, door). A halted locker is a complete answer that is not a success: these commands
print its reason and exit 5 (EXIT_HALTED)."""
import os
import time

from core import config, throttle

from .. import inputs, sim
from ..output import (
    EXIT_HALTED,
    EXIT_MISSING,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    duration,
    size_name,
    when,
)
from . import common
from .operator import provision_state


HEAP_PEAK_LABEL = "peak during a request"
HEAP_PEAK_NOTE = ("retained when the request started + all it allocated, counted with the "
                  "collector off: %d of %d requests measured, STATUS and AUDIT_READ never")


def _halted(data, text, reason):
    """(data, text, exit code): a halted locker's answer says so and why, and exits 5."""
    if not reason:
        return data, text, EXIT_OK
    return (data, text + "\nLOCKER HALTED: %s\n  it serves nothing until an operator "
            "recovers it" % reason, EXIT_HALTED)


def _control(args, cmd):
    state = common.state_dir(args)
    common.require_provisioned(state)
    return sim.control(state, cmd)


def cmd_start(args):
    state = common.state_dir(args)
    provisioned = None
    if not sim.is_provisioned(state):
        provisioned = provision_state(state, args.layout or config.DEFAULTS["layout"])
    elif args.layout:
        have = sim.read_json(os.path.join(state, "locker.json"), {}).get("layout")
        if have != args.layout:
            raise CliError(EXIT_USAGE, "%s is provisioned with layout %s: use another --state "
                           "or `lockerctl provision --force --layout ...`" % (state, have))
    already = sim.running_pid(state)
    pid, status, boot_s = sim.start(state, args.port, not args.no_sensors,
                                    flash_kb=getattr(args, "flash_image", None))
    cfg = sim.sim_config(state)
    out = {"pid": pid, "port": cfg["port"], "control_port": cfg["control_port"],
           "locker_id": status["locker_id"], "slots": len(status["slots"]),
           "already_running": bool(already), "boot_s": round(boot_s, 3),
           "state": os.path.abspath(state), "halted": status["halted"]}
    text = ""
    if provisioned:
        out["provisioned"] = provisioned
        text = "provisioned new locker %s (key in %s)\n" % (provisioned["locker_id"],
                                                            provisioned["keystore"])
    text += ("simulator %s: locker %s, %d slots, radio 127.0.0.1:%d, control %d, pid %d%s"
             % ("already running" if already else "started", out["locker_id"], out["slots"],
                out["port"], out["control_port"], pid,
                "" if already else ", booted in %.2f s" % boot_s))
    return _halted(out, text, status["halted"])


def cmd_stop(args):
    state = common.state_dir(args)
    common.require_provisioned(state)
    pid = sim.stop(state)
    return {"pid": pid}, "simulator (pid %d) stopped" % pid


def throttle_waits(data, now):
    """{"all slots" | "slot N": seconds} a human-code attempt must wait (core/throttle.py)."""
    tat, slots = data
    out = {}
    if throttle.GLOBAL.wait(tat, now):
        out["all slots"] = throttle.GLOBAL.wait(tat, now)
    for sid, slot_tat in slots:
        if throttle.SLOT.wait(slot_tat, now):
            out["slot %d" % sid] = throttle.SLOT.wait(slot_tat, now)
    return out


def status_view(st):
    """The control port's compact status -> named fields (JSON answer of `sim status`)."""
    now = st["time"]
    slots = []
    for sid, size, state, oos, expired, door, jammed, output in st["slots"]:
        slots.append({"slot": sid, "size": size_name(size),
                      "state": "expired" if expired else ("occupied" if state else "free"),
                      "out_of_service": bool(oos), "door": "open" if door else "closed",
                      "jammed": bool(jammed), "lock_energised": bool(output)})
    waits = throttle_waits(st["throttle"], now)
    return {"locker_id": st["locker_id"], "time": now, "rtc": st["rtc"],
            "halted": st["halted"], "journal_seq": st["journal_seq"],
            "requests": st["requests"], "heap_peak": st["heap_peak"],
            "heap_measured": st.get("heap_measured", 0),
            "heap_now": st["heap_now"], "heap_total": st["heap_total"],
            "throttle": {"human_code_waits": waits,
                         "retry_after": max([0] + list(waits.values()))},
            "slots": slots}


def status_text(v):
    lines = ["locker %s   time %s   journal #%d   requests %d"
             % (v["locker_id"], when(v["time"]), v["journal_seq"], v["requests"])]
    lines.append("slot  size  parcel    service         door")
    for s in v["slots"]:
        door = ("jammed (%s)" % s["door"]) if s["jammed"] else s["door"]
        if s["lock_energised"]:
            door += ", lock energised"
        lines.append("%4d  %-4s  %-8s  %-14s  %s" % (
            s["slot"], s["size"], s["state"],
            "OUT OF SERVICE" if s["out_of_service"] else "in service", door))
    t = v["throttle"]
    lines.append("human-code pickups: %s" % (", ".join(
        "%s wait %s" % (k, duration(w)) for k, w in sorted(t["human_code_waits"].items()))
        or "no wait"))
    # main.Runtime.handle measures each state-changing request with the collector off: the
    # true high point of the heap during it (docs/performance.md, "The simulator's heap").
    lines.append("heap in use now %d of %d bytes; %s %d"
                 % (v["heap_now"], v["heap_total"], HEAP_PEAK_LABEL, v["heap_peak"]))
    lines.append("  (" + HEAP_PEAK_NOTE % (v["heap_measured"], v["requests"]) + ")")
    return "\n".join(lines)


def cmd_status(args):
    v = status_view(_control(args, {"cmd": "status"}))
    v["pid"] = sim.running_pid(common.state_dir(args))
    return _halted(v, status_text(v), v["halted"])


def cmd_clock(args):
    by = args.advance or 0
    if by:
        st = _control(args, {"cmd": "status"})
        if st["time"] + by > inputs.TIME_MAX:
            raise CliError(EXIT_USAGE, "+%d s would move the locker past %s, the last time it "
                           "can hold (u32 seconds): at most +%dd from its time %s"
                           % (by, when(inputs.TIME_MAX), (inputs.TIME_MAX - st["time"]) // 86400,
                              when(st["time"])))
        st = _control(args, {"cmd": "clock", "advance": by})
    else:
        st = _control(args, {"cmd": "status"})
    ahead = st["rtc"] - int(time.time())
    out = {"time": st["time"], "rtc": st["rtc"], "advanced_by": by, "rtc_ahead_s": ahead}
    text = "locker time %s (RTC %s of this host by %dd %02dh %02dm)" % (
        when(st["time"]), "ahead" if ahead >= 0 else "behind", abs(ahead) // 86400,
        abs(ahead) % 86400 // 3600, abs(ahead) % 3600 // 60)
    if by:
        text = "advanced the RTC by %s\n" % duration(by) + text
    return out, text


def cmd_power_cut(args):
    state = common.state_dir(args)
    common.require_provisioned(state)
    old = sim.running_pid(state)
    pid, st, boot_s = sim.power_cut(state)
    out = {"killed_pid": old, "pid": pid, "boot_s": round(boot_s, 3), "time": st["time"],
           "journal_seq": st["journal_seq"], "halted": st["halted"]}
    text = ("power cut: pid %d killed mid-flight; booted again as pid %d in %.2f s "
            "(journal #%d, locker time %s)" % (old, pid, boot_s, st["journal_seq"],
                                               when(st["time"])))
    return _halted(out, text, st["halted"])


def cmd_door(args):
    st = _control(args, {"cmd": "door", "slot": args.slot, "action": args.action})
    v = status_view(st)
    if args.slot > len(v["slots"]):
        raise CliError(EXIT_USAGE, "this locker has slots 1..%d" % len(v["slots"]))
    s = v["slots"][args.slot - 1]
    return ({"slot": args.slot, "action": args.action, "door": s["door"], "jammed": s["jammed"]},
            "slot %d: door %s%s" % (args.slot, s["door"], ", jammed" if s["jammed"] else ""))


def _flash_kb(text):
    """--flash-image KB: whole 4 KB blocks, 64 KB .. 16 MB (an ESP32's flash)."""
    import argparse
    try:
        kb = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("flash image size must be a number of KB, got %r"
                                         % text)
    if kb % 4 or not 64 <= kb <= 16384:
        raise argparse.ArgumentTypeError("flash image size must be 64..16384 KB in whole "
                                         "4 KB blocks, got %d" % kb)
    return kb


def cmd_web(args):
    """The phone web app and a WebSocket relay to this simulator (lockerctl/webrelay.py);
    runs until Ctrl-C."""
    import asyncio
    try:
        from .. import webrelay
    except ImportError as e:
        raise CliError(EXIT_USAGE, "`sim web` needs the websockets package (%s): "
                       "pip install -e '.[web]'" % e)
    state = common.state_dir(args)
    cfg = sim.sim_config(state)
    if not cfg or not sim.running_pid(state):
        raise CliError(EXIT_UNREACHABLE, "no simulator running in %s: `lockerctl sim start` "
                       "first" % state)
    app = args.app or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))), "build", "webapp")

    def ready(port):
        print("open http://%s:%d to try it in your browser (Ctrl-C to stop)" % (args.host, port),
              flush=True)
    try:
        asyncio.run(webrelay.serve_web(app, cfg["port"], args.host, args.port, ready))
    except webrelay.WebAppMissing as e:
        raise CliError(EXIT_MISSING, str(e))
    except OSError as e:
        raise CliError(EXIT_USAGE, "cannot serve on %s:%d: %s" % (args.host, args.port, e))
    return {"app": app}, "web app stopped"


def register(sub):
    common_opts = common.options()
    s = sub.add_parser("sim", help="run and drive the simulated locker")
    simsub = s.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True)
    p = simsub.add_parser("start", parents=[common_opts], help="start the simulator "
                          "(provisions a fresh state folder)")
    p.add_argument("--layout", help="slot sizes S, M, L, XL, e.g. S*4,M*4,L*2 (fresh state)")
    p.add_argument("--no-sensors", action="store_true", help="a board without door sensors")
    p.add_argument("--port", type=inputs.sim_port, default=sim.DEFAULT_PORT,
                   help="radio port; control is PORT+1; 0 picks free ports (default 7420)")
    p.add_argument("--flash-image", nargs="?", const=1792, metavar="KB", type=_flash_kb,
                   help="keep the store on a littlefs flash image (4 KB blocks, default "
                        "1792 KB) like the ESP32, instead of a host folder")
    p.set_defaults(func=cmd_start)
    simsub.add_parser("stop", parents=[common_opts], help="stop it").set_defaults(func=cmd_stop)
    simsub.add_parser("status", parents=[common_opts], help="slot grid, time, heap; exits 5 "
                      "when the locker is halted").set_defaults(func=cmd_status)
    p = simsub.add_parser("clock", parents=[common_opts],
                          help="show or advance the simulated RTC")
    p.add_argument("advance", nargs="?", metavar="+DURATION", type=inputs.clock_step,
                   help="e.g. +3d, +73h, +90s")
    p.set_defaults(func=cmd_clock)
    simsub.add_parser("power-cut", parents=[common_opts], help="kill the firmware and boot it "
                      "again").set_defaults(func=cmd_power_cut)
    p = simsub.add_parser("door", parents=[common_opts], help="what a person at the cabinet does")
    p.add_argument("slot", type=inputs.slot_number)
    p.add_argument("action", choices=["close", "open", "jam", "unjam"])
    p.set_defaults(func=cmd_door)
    p = simsub.add_parser("web", parents=[common_opts], help="serve the phone web app with a "
                          "relay to the simulator (http://127.0.0.1:8080)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--app", metavar="DIR", help="the built app (default: build/webapp)")
    p.set_defaults(func=cmd_web)
