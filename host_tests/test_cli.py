"""`lockerctl` without a locker: argument errors, exit codes, key store file modes, --json,
and the host's audit-chain check against an independent HMAC implementation."""
import contextlib
import hashlib
import hmac
import io
import json
import os
import stat
import subprocess
import sys

import pytest
from core import credentials
from lockerctl import cli, keystore, sim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKERCTL_HOME", str(tmp_path / "keys"))
    monkeypatch.setenv("LOCKER_STATE", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    """(exit code, stdout, stderr) of lockerctl in-process; argparse errors included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def run_json(*args):
    code, out, _ = run(*(args + ("--json",)))
    return code, json.loads(out)


@pytest.fixture
def provisioned(home):
    code, data = run_json("provision", "--layout", "S*2,M")
    assert code == 0, data
    return data


@pytest.fixture
def courier_file(provisioned, home):
    code, data = run_json("credential", "issue", "--courier", "c-1", "--out", "c.json")
    assert code == 0, data
    return str(home / "c.json")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- usage errors: exit 2 with a message ------------------------------------------------

@pytest.mark.parametrize("args", [
    (),
    ("deposit",),                                          # --credential missing
    ("deposit", "--credential", "x", "--size", "XXL"),
    ("pickup",),
    ("sim", "door", "1", "wiggle"),
    ("sim", "door", "0", "close"),
    ("open-slot", "--credential", "t", "3", "--clear", "--in-service"),
    ("credential", "issue"),                               # neither --courier nor --technician
    ("credential", "issue", "--courier", "a", "--technician", "b"),
    ("deposit", "--credential", "x", "--sim", "1", "--ble", "ABC"),
])
def test_argument_errors_exit_2_with_a_message(home, args):
    code, _, err = run(*args)
    assert code == 2
    assert "error" in err


@pytest.mark.parametrize("args, words", [
    (("pickup", "12345"), "not a pickup code"),
    (("pickup", "001-2345-67890x"), "not a pickup code"),
    (("sim", "clock", "3d"), "+DURATION"),
    (("provision", "--port", "/dev/ttyUSB0"), "needs --board"),
    (("provision", "--layout", "S*2,Q*3"), "unknown slot size"),
    (("credential", "issue", "--courier", "x" * 17), "holder id"),
    (("credential", "issue", "--technician", "t", "--reclaim-any"), "courier scope"),
])
def test_input_errors_exit_2_and_name_the_problem(home, args, words):
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert words in err


def test_bad_duration_and_request_id_exit_2(courier_file):
    code, _, err = run("credential", "issue", "--courier", "c-2", "--valid", "7x")
    assert code == 2 and "duration" in err
    code, _, err = run("deposit", "--credential", courier_file, "--request-id", "zz",
                       "--sim", "1")
    assert code == 2 and "request id" in err


def test_ble_without_its_module_exits_2(courier_file, monkeypatch):
    import lockerctl
    monkeypatch.setitem(sys.modules, "lockerctl.ble", None)     # as if ble.py were absent
    monkeypatch.delattr(lockerctl, "ble", raising=False)
    code, _, err = run("deposit", "--credential", courier_file, "--ble", "0102030405060708")
    assert code == 2 and "--ble" in err


# ---- exit 3 and 4 ----------------------------------------------------------------------

def test_unreachable_locker_exits_3(courier_file):
    code, data = run_json("deposit", "--credential", courier_file, "--sim",
                          str(sim.free_port()))
    assert code == 3 and data["ok"] is False and "reach" in data["error"]
    code, data = run_json("sim", "status")
    assert code == 3                                   # provisioned, but never started
    code, _, err = run("sim", "stop")
    assert code == 3 and "no simulator" in err


def test_missing_local_state_exits_4(home):
    code, _, err = run("credential", "issue", "--courier", "c-1")
    assert code == 4 and "provision" in err
    code, _, err = run("deposit", "--credential", "nowhere.json", "--sim", "1")
    assert code == 4 and "credential issue" in err


def test_a_second_provision_needs_force(provisioned):
    code, _, err = run("provision")
    assert code == 2 and "--force" in err
    code, data = run_json("provision", "--force", "--layout", "L*3")
    assert code == 0 and data["locker_id"] != provisioned["locker_id"] and data["slots"] == 3


# ---- files: key store, secret, credentials ----------------------------------------------

def test_key_store_and_secrets_are_private_whatever_the_umask(home):
    old = os.umask(0)
    try:
        code, data = run_json("provision")
        assert code == 0
        code, cred = run_json("credential", "issue", "--technician", "t-1", "--audit")
        assert code == 0
    finally:
        os.umask(old)
    assert mode(home / "keys") == 0o700
    assert mode(data["keystore"]) == 0o600
    assert mode(home / "state" / "secret.bin") == 0o600
    assert mode(cred["file"]) == 0o600
    assert not [n for n in os.listdir(home / "keys") if n.endswith(".tmp")]


def test_key_store_tightens_a_loose_folder(home):
    os.makedirs(home / "keys", mode=0o755)
    os.chmod(home / "keys", 0o755)
    assert run("provision")[0] == 0
    assert mode(home / "keys") == 0o700


def test_master_secret_is_in_the_store_and_the_state_but_not_in_a_credential(provisioned,
                                                                              courier_file):
    store = keystore.KeyStore()
    master = store.master(provisioned["locker_id"])
    with open(os.path.join(provisioned["state"], "secret.bin"), "rb") as f:
        assert f.read() == master
    with open(courier_file) as f:
        text = f.read()
    assert master.hex() not in text


def test_serials_count_up_and_revocation_uses_them(provisioned):
    serials = [run_json("credential", "issue", "--courier", "c%d" % i)[1]["serial"]
               for i in range(3)]
    assert serials == sorted(set(serials)) and len(serials) == 3
    code, rev = run_json("credential", "revoke", serials[1])
    assert code == 0 and rev["delivered"] is False and rev["admin_seq"] == 1
    entry = keystore.KeyStore().load(provisioned["locker_id"])
    assert entry["admin_seq"] == 1 and len(entry["pending_admin"]) == 1
    code, rev2 = run_json("credential", "revoke", serials[2])
    assert rev2["admin_seq"] == 2
    code, _, err = run("credential", "revoke", 999)
    assert code == 2 and "999" in err


def test_credential_file_round_trips(courier_file, provisioned):
    cred = cli.load_credential(courier_file)
    c = cred.credential
    assert c.kind == credentials.COURIER and c.holder == b"c-1"
    assert cred.locker_id.hex() == provisioned["locker_id"]
    master = keystore.KeyStore().master(provisioned["locker_id"])
    assert cred.key == c.key(master, cred.locker_id)


def test_a_tampered_credential_file_is_an_input_error(courier_file):
    with open(courier_file) as f:
        data = json.load(f)
    data["block"] = "zz"
    with open(courier_file, "w") as f:
        json.dump(data, f)
    code, _, err = run("deposit", "--credential", courier_file, "--sim", "1")
    assert code == 2 and "not valid" in err


# ---- --json --------------------------------------------------------------------------------

def test_json_output_parses_for_success_and_failure(home):
    code, data = run_json("provision", "--layout", "S,M")
    assert code == 0 and data["ok"] is True and data["exit"] == 0 and data["slots"] == 2
    code, data = run_json("credential", "issue", "--courier", "c-9", "--valid", "2h")
    assert code == 0 and data["not_after"] - data["issued_at"] == 7200
    code, data = run_json("pickup", "nonsense")
    assert code == 2 and data["ok"] is False and data["exit"] == 2 and data["error"]


def test_console_script_runs(home):
    """The installed entry point (pyproject) reaches cli.main and keeps the exit code."""
    script = os.path.join(os.path.dirname(sys.executable), "lockerctl")
    if not os.path.exists(script):
        pytest.skip("lockerctl console script not installed in this environment")
    done = subprocess.run([script, "pickup", "42", "--json"], capture_output=True, text=True)
    assert done.returncode == 2
    assert json.loads(done.stdout)["exit"] == 2
    done = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "exit codes" in done.stdout


# ---- the operator's audit-chain check ------------------------------------------------------

def _chain(key, records):
    """Journal lines built with CPython's hmac: an implementation independent of the
    firmware's hmac_sha256 and store.chain_mac."""
    prev, lines = b"\x00" * 16, []
    for rec in records:
        body = json.dumps(rec).encode()
        mac = hmac.new(key, prev + body, hashlib.sha256).digest()[:16]
        lines.append(body + b"\t" + mac.hex().encode())
        prev = mac
    return lines


def _audit_key(master):
    return hmac.new(master, b"LKR1/audit-chain\x00", hashlib.sha256).digest()


RECORDS = [{"e": "boot", "t": 100, "n": 1}, {"e": "dep", "s": 2, "t": 130, "n": 2},
           {"e": "pick", "s": 2, "t": 190, "n": 3}, {"e": "fail", "s": 1, "t": 200, "n": 4}]


def test_audit_chain_verifies():
    master = bytes(range(32))
    records, problem = cli.verify_chain(_chain(_audit_key(master), RECORDS), _audit_key(master))
    assert problem is None and records == RECORDS


@pytest.mark.parametrize("tamper", ["flip", "drop", "swap", "wrong-key"])
def test_audit_chain_detects_tampering(tamper):
    key = _audit_key(bytes(range(32)))
    lines = _chain(key, RECORDS)
    if tamper == "flip":
        lines[1] = lines[1].replace(b'"s": 2', b'"s": 3')
    elif tamper == "drop":
        del lines[2]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        key = _audit_key(bytes(32))
    records, problem = cli.verify_chain(lines, key)
    assert problem is not None


def test_provision_board_takes_lock_ratings_from_the_profile(home):
    """--port writes locker.json + secret.bin over mpremote; the config carries the board's
    pulse and power budget so the board's own check_config accepts it at boot."""
    code, data = run_json("provision", "--port", "/dev/ttyUSB9", "--board",
                          "cabinet-24-mcp23017", "--dry-run")
    assert code == 0, data
    assert data["slots"] == 24 and data["layout"] == "S*24"
    assert any("locker.json" in c for c in data["commands"])
    assert any("secret.bin" in c for c in data["commands"])
    assert not os.path.exists(data["keystore"])          # a dry run keeps no identity


def test_provision_board_refuses_a_layout_the_board_cannot_drive(home):
    code, out, err = run("provision", "--port", "/dev/ttyUSB9", "--board",
                         "esp32-devkitc-4door", "--layout", "S*6", "--dry-run")
    assert code == 2 and "6 slots but the board has 4 doors" in err
    code, out, err = run("provision", "--port", "/dev/ttyUSB9", "--board", "no-such-board")
    assert code == 2 and "no board profile" in err
    code, out, err = run("provision", "--port", "/dev/ttyUSB9")
    assert code == 2 and "--board" in err


# ---- issue 12.5: every argument checked against what the firmware can hold ---------------

def _serials(lid):
    return keystore.KeyStore().load(lid)["next_serial"]


@pytest.mark.parametrize("args, words", [
    (("credential", "issue", "--courier", ""), "holder id is 1..16 bytes"),
    (("credential", "issue", "--technician", ""), "holder id is 1..16 bytes"),
    (("credential", "issue", "--courier", "x\ny"), "control characters"),
    (("credential", "issue", "--technician", "x", "--valid", "30000d"), "2106"),
    (("credential", "issue", "--courier", "x", "--valid", "0s"), "at least 1 s"),
    (("credential", "issue", "--courier", "x", "--valid=-5d"), "bad duration"),
    (("credential", "issue", "--courier", "x", "--valid", "9" * 40), "2106"),
    (("credential", "issue", "--courier", "x", "--locker", "../../etc"), "16 hex digits"),
    (("credential", "revoke", "0"), "1..4294967295"),
    (("credential", "revoke", str(2 ** 32)), "1..4294967295"),
    (("credential", "revoke", "--", "-1"), "1..4294967295"),
    (("audit", "--from", str(2 ** 32), "--sim", "1"), "1..4294967295"),
    (("audit", "--from", "0", "--sim", "1"), "1..4294967295"),
    (("deposit", "--credential", "c", "--sim", "99999"), "PORT 1..65535"),
    (("deposit", "--credential", "c", "--ble", "LKR-XYZ"), "16 hex digits"),
    (("sim", "start", "--port=-1"), "0..65534"),
    (("sim", "clock", "+0s"), "at least 1 s"),
    (("sim", "clock", "+%dd" % 60000), "time range"),
    # a value that starts "-<digit>" reaches its own check (argparse took it for an option)
    (("sim", "clock", "-1d"), "only moves forward"),
    (("credential", "revoke", "-1"), "1..4294967295"),
    (("credential", "issue", "--courier", "x", "--valid", "-5d"), "bad duration"),
])
def test_arguments_beyond_what_the_firmware_holds_exit_2_and_change_nothing(provisioned, args,
                                                                             words):
    before = _serials(provisioned["locker_id"])
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err + out
    assert _serials(provisioned["locker_id"]) == before


@pytest.mark.parametrize("ttl, words", [("0s", "at least 1 s"), ("0", "at least 1 s"),
                                        ("100000d", "2106"), ("7x", "bad duration")])
def test_provision_refuses_a_ttl_the_firmware_cannot_hold(home, ttl, words):
    """--ttl 0s used to be ignored (default kept), --ttl 100000d stored and printed as a
    wrapped 2028 expiry: both are refused before a key or a file is written."""
    code, out, err = run("provision", "--ttl", ttl)
    assert code == 2 and words in err, (out, err)
    assert not os.path.exists(home / "state" / "locker.json")
    assert keystore.KeyStore().lockers() == []


def test_provision_keeps_a_valid_ttl(home):
    code, data = run_json("provision", "--ttl", "48h")
    assert code == 0
    with open(home / "state" / "locker.json") as f:
        assert json.load(f)["ttl_s"] == 48 * 3600


def test_a_forced_provision_with_a_bad_layout_keeps_the_old_locker(provisioned, home):
    store_dir = home / "state" / "store"
    os.makedirs(store_dir)
    (store_dir / "j.1").write_text("kept")
    for layout in ("S*2,Q", "S*99999999999999", "S*0"):
        code, _, err = run("provision", "--force", "--layout", layout)
        assert code == 2 and ("slot" in err or "layout" in err), err
    assert (store_dir / "j.1").read_text() == "kept"
    assert cli.load_credential  # the module still exports its library functions


def test_a_credential_file_that_cannot_be_written_is_an_input_error(provisioned, home):
    code, out, err = run("credential", "issue", "--courier", "c-1", "--out",
                         str(home / "no" / "such" / "dir" / "c.json"))
    assert code == 2 and "cannot write credential file" in err and "Traceback" not in err


def test_size_words_agree_in_readme_help_and_firmware():
    """README, `deposit --help` and the firmware's size names are the same list."""
    from core.slot_manager import SIZE_NAMES
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "--size %s" % "\\|".join(SIZE_NAMES) in readme
    code, out, _ = run("deposit", "--help")
    assert code == 0 and "--size %s" % "|".join(SIZE_NAMES) in out
    code, _, err = run("deposit", "--credential", "x", "--size", "xxl")
    assert code == 2 and ", ".join(SIZE_NAMES) in err


# ---- usage errors honour --json; missing state is exit 4; no doubled prefixes ----------------

@pytest.mark.parametrize("args", [
    ("deposit",), ("sim", "door", "1", "wiggle"), ("credential", "issue", "--courier", ""),
    ("nonsense",), ("pickup", "1", "2"),
])
def test_usage_errors_honour_json(home, args):
    code, out, err = run(*(args + ("--json",)))
    data = json.loads(out)
    assert code == 2 and data["exit"] == 2 and data["ok"] is False
    assert data["error"] and data["usage"].startswith("usage: lockerctl")
    assert err == ""


@pytest.mark.parametrize("args", [
    ("sim", "status"), ("sim", "stop"), ("sim", "clock"), ("sim", "clock", "+1d"),
    ("sim", "power-cut"), ("sim", "door", "1", "close"),
    ("deposit", "--credential", "c.json"), ("pickup", "001-00000-00000"),
])
def test_a_state_folder_without_a_locker_exits_4(home, args):
    code, data = run_json(*(args + ("--state", str(home / "nonexistent"))))
    assert code == 4 and data["exit"] == 4, data
    assert "no provisioned locker in" in data["error"] or "credential" in data["error"]


def test_sim_status_of_a_nonexistent_state_exits_4_as_the_issue_reports(home):
    code, out, err = run("sim", "status", "--state", "/nonexistent")
    assert code == 4 and "/nonexistent" in err


def test_unreachable_locker_is_said_once(courier_file):
    code, _, err = run("deposit", "--credential", courier_file, "--sim", str(sim.free_port()))
    assert code == 3
    assert err.count("reach the locker") == 1, err
    assert err.startswith("lockerctl: cannot reach the locker at 127.0.0.1:")


def test_no_error_message_repeats_its_prefix(provisioned, courier_file, monkeypatch):
    """Every wording path of the output layer: a prefix is never said twice."""
    from lockerctl import output
    for exc in (sim.SimError("the simulator exited during boot:\nMemoryError"),
                sim.SimNotRunning("simulator closed the control connection"),
                sim.SimRefused("no slot 9"), sim.SimError("no MicroPython unix port found")):
        msg = output._as_cli_error(exc).message
        words = msg.lower().replace(":", " ").split()
        assert words.count("simulator") <= 1 and not msg.startswith("simulator: the"), msg


# ---- heap settings: a typo is named, not MicroPython's "Invalid command line arguments" -------

@pytest.mark.parametrize("value, ok", [
    ("128k", True), ("100K", True), ("1m", True), ("131072", True), ("", True),
    ("abc", False), ("12x", False), ("-5k", False), ("1k", False), ("k", False),
    ("5g", False), ("１２８k", False),
])
def test_heap_settings_are_checked(monkeypatch, value, ok):
    from lockerctl import firmware
    monkeypatch.setenv("SIM_HEAP", value)
    if ok:
        assert firmware.heap_bytes(sim.sim_heap()) >= firmware.MIN_HEAP
    else:
        with pytest.raises(firmware.SettingError, match="SIM_HEAP="):
            sim.sim_heap()


def test_sim_start_with_a_bad_sim_heap_exits_2(home, monkeypatch):
    monkeypatch.setenv("SIM_HEAP", "abc")
    code, _, err = run("sim", "start", "--port", "0")
    assert code == 2 and "SIM_HEAP=abc is not a heap size" in err and "Traceback" not in err


def test_demo_with_a_bad_sim_heap_says_so(tmp_path):
    env = dict(os.environ, SIM_HEAP="abc")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SIM_HEAP=abc is not a heap size" in done.stderr
    assert "Invalid command line" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


# ---- the status answer: halted says so and exits 5; the heap figure is labelled honestly -----

def _status(halted="", heap_peak=91360):
    return {"locker_id": "00" * 8, "time": 1_800_000_000, "rtc": 1_800_000_000,
            "slots": [[1, 1, 0, 0, 0, 0, 0, 0], [2, 4, 1, 0, 0, 1, 0, 0]], "halted": halted,
            "journal_seq": 3, "requests": 2, "heap_peak": heap_peak, "heap_measured": 1,
            "heap_now": 80000,
            "heap_total": 129536, "throttle": [0, []]}


def test_status_text_names_sizes_and_labels_the_heap_figure_honestly():
    from lockerctl.commands import sim as simcmd
    text = simcmd.status_text(simcmd.status_view(_status(heap_peak=91361)))
    assert "91361" in text and "peak during a request" in text
    assert "collector off" in text and "1 of 2 requests measured" in text
    assert "high-water" not in text
    assert "  XL  " in text and "   4  " not in text


def test_a_halted_status_exits_5_with_its_reason(home, monkeypatch):
    assert run("provision")[0] == 0
    monkeypatch.setattr(sim, "control", lambda state, cmd, timeout=5.0: _status(
        halted="store corrupt: segment 1: bad record after 1"))
    code, out, err = run("sim", "status")
    assert code == 5 and "LOCKER HALTED: store corrupt" in out
    code, data = run_json("sim", "status")
    assert code == 5 and data["ok"] is False and data["exit"] == 5
    assert data["halted"].startswith("store corrupt")
    monkeypatch.setattr(sim, "control", lambda state, cmd, timeout=5.0: _status())
    assert run("sim", "status")[0] == 0


# ---- no traceback, whatever is typed ---------------------------------------------------------

COMMANDS = [("credential", "issue", "--courier"), ("credential", "issue", "--technician"),
            ("credential", "revoke"), ("provision", "--force"), ("pickup",), ("audit",),
            ("deposit", "--credential", "c.json"), ("reclaim", "--credential", "c.json"),
            ("cancel", "--credential", "c.json", "--request-id"),
            ("open-slot", "--credential", "c.json"), ("sim", "status"), ("sim", "clock"),
            ("sim", "door"), ("sim", "stop"), ("sim", "power-cut")]
FLAGS = ["--valid", "--ttl", "--size", "--slot", "--from", "--locker", "--out", "--layout",
         "--request-id", "--sim", "--ble", "--reclaim-any", "--audit", "--verify", "--clear"]
VALUES = ["", " ", "0", "0s", "-1", "1", "7d", "+3d", "30000d", "100000d", "9" * 30,
          "4294967296", "99999", "XL", "xs", "S*2,M", "S*0", "Q", "zz", "00" * 8, "LKR-00",
          "001-00000-00000", "\xe9" * 20, "\x00", "a/b", "close", "jam"]


def test_no_input_ends_in_a_traceback(home):
    """Command lines built from the CLI's own grammar with hostile values (no `sim start`
    or `provision --port`: they would boot a simulator or call mpremote): every one ends
    with a known exit code and a message, never a traceback or an internal error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    assert run("provision", "--layout", "S,M")[0] == 0
    assert run("credential", "issue", "--courier", "c", "--out", "c.json")[0] == 0
    closed = str(sim.free_port())
    value = st.one_of(st.sampled_from(VALUES), st.text(max_size=8))
    flag_value = st.one_of(st.tuples(st.sampled_from(FLAGS), value).map(list),
                           st.tuples(st.sampled_from(FLAGS), value).map(lambda t: ["=".join(t)]),
                           value.map(lambda v: [v]))

    @settings(max_examples=400, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(COMMANDS), value, st.lists(flag_value, max_size=3),
           st.booleans())
    def check(command, first, rest, as_json):
        argv = list(command) + [first] + [w for part in rest for w in part]
        if command[0] != "sim" and "--sim" not in argv and "--ble" not in argv:
            argv += ["--sim", closed]
        if as_json:
            argv.append("--json")
        code, out, err = run(*argv)
        assert code in (0, 1, 2, 3, 4, 5), (argv, code, out, err)
        assert "Traceback" not in out + err and "internal error" not in out + err, (argv, err)
        if as_json:
            assert json.loads(out)["exit"] == code, (argv, out)
    check()


def test_the_lockers_own_config_refuses_what_it_cannot_hold():
    """A hand-written locker.json gets the same limits at boot (core/config.py)."""
    from core import config
    base = {"locker_id": "00" * 8}
    with pytest.raises(config.ConfigError, match="u32"):
        config.build(dict(base, ttl_s=2 ** 32))
    with pytest.raises(config.ConfigError, match="1..999"):
        config.build(dict(base, layout="S*99999999999999"))
    assert config.build(dict(base, ttl_s=2 ** 32 - 1))["ttl_s"] == 2 ** 32 - 1


@pytest.mark.parametrize("args", [("--help",), ("provision", "--json"), ("provision",),
                                  ("sim", "status")])
def test_a_reader_that_goes_away_gets_no_traceback(home, args):
    """`lockerctl ... | head`: the pipe closes before lockerctl writes."""
    script = os.path.join(os.path.dirname(sys.executable), "lockerctl")
    if not os.path.exists(script):
        pytest.skip("lockerctl console script not installed in this environment")
    proc = subprocess.Popen([script] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_ble_without_bleak_is_an_install_hint_not_unreachable(courier_file, monkeypatch):
    monkeypatch.delitem(sys.modules, "bleak", raising=False)   # as if bleak were not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    code, _, err = run("deposit", "--credential", courier_file, "--ble", "0102030405060708")
    assert code == 2 and "pip install" in err and "bleak" in err


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (45, "45 s"), (3599, "59 min 59 s"),
                                           (3600, "1 h"), (262800, "3 d 1 h"),
                                           (90061, "1 d 1 h")])
def test_durations_are_shown_as_people_read_them(seconds, text):
    """Waits and clock steps in words, not raw seconds (fresh-eyes review)."""
    from lockerctl.output import duration
    assert duration(seconds) == text


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_failed_boot_shows_that_boot_not_the_one_before(tmp_path):
    """sim.log keeps every boot: the error shown is the last boot's (review finding: after a
    boot that failed one way, the next failure showed the earlier traceback's end too)."""
    (tmp_path / "sim.log").write_text(
        "--- boot at 1 ---\nTraceback (most recent call last):\n  File \"main.py\", line 1\n"
        "ValueError: an old failure\n--- boot at 2 ---\nTraceback (most recent call last):\n"
        "  File \"main.py\", line 1, in <module>\nOSError: [Errno 98] EADDRINUSE\n")
    with pytest.raises(sim.SimError) as e:
        sim._wait_ready(str(tmp_path), _dead_pid())
    assert "EADDRINUSE" in str(e.value) and "old failure" not in str(e.value)


def test_a_boot_out_of_heap_names_sim_heap(tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_HEAP", "64k")
    (tmp_path / "sim.log").write_text(
        "--- boot at 2 ---\nTraceback (most recent call last):\n  File \"main.py\", line 1\n"
        "MemoryError: memory allocation failed, allocating 368 bytes\n")
    with pytest.raises(sim.SimError) as e:
        sim._wait_ready(str(tmp_path), _dead_pid())
    assert "MemoryError" in str(e.value) and "SIM_HEAP=64k" in str(e.value)


def test_a_firmware_error_in_the_simulator_reaches_the_user(home, tmp_path):
    """A request that makes the simulated firmware fail ends in "locker closed the
    connection"; what the simulator logged meanwhile (sim.log) is shown with it (review
    finding: the user saw only the closed connection, the reason was in sim.log)."""
    import socket
    import threading
    state = home / "state"
    state.mkdir()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    (state / "sim.json").write_text(json.dumps({"port": srv.getsockname()[1],
                                                "control_port": 1}))
    (state / "sim.log").write_text("--- boot at 1 ---\n[locker] booted\n")

    def firmware_fails():
        conn, _ = srv.accept()
        conn.recv(64)
        with open(state / "sim.log", "a") as f:
            f.write("[locker] task error: planted request fault\n")
        conn.close()

    t = threading.Thread(target=firmware_fails)
    t.start()
    code, _, err = run("pickup", "001-00000-00000")
    t.join()
    srv.close()
    assert code == 3
    assert "closed the connection" in err and "task error: planted request fault" in err
    assert "booted" not in err                  # only what was logged during the request
