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
