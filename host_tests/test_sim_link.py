"""The simulator's socket link (firmware/targets/sim_board.py) on the real MicroPython unix
port: the same flow control and limits as BLE (core/link.py, docs/protocol.md 2), and no
socket left behind in CLOSE-WAIT (issue 12.3, 13)."""
import os
import socket
import time

import mp_runner
import pytest
from core import fragment, phone
from core import protocol as P
from lockerctl import sim
from lockerctl.commands.operator import provision_state
from lockerctl.client import LockerClient
from lockerctl.transport import SimSocketTransport

_TCP_CLOSE_WAIT = "08"         # include/net/tcp_states.h: TCP_CLOSE_WAIT = 8


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    mp_runner.micropython()               # skips the module when there is no unix port
    return sim.build_firmware(str(tmp_path_factory.mktemp("fw-link")))


class Sim:
    def __init__(self, tmp, fw, link_ms=None):
        import shutil
        self.state = str(tmp / "state")
        os.makedirs(self.state)
        shutil.copytree(fw, os.path.join(self.state, "fw"))
        provision_state(self.state, "S*2,M")
        self.pid, _, _ = sim.start(self.state, port=0, link_ms=link_ms)
        self.port = sim.sim_config(self.state)["port"]

    def raw(self, payload=20):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(bytes((payload,)))
        assert s.recv(1) == bytes((payload,))
        return s

    def stop(self):
        try:
            sim.stop(self.state)
        except Exception:
            if sim.running_pid(self.state):
                sim._kill(self.pid)


@pytest.fixture
def make_sim(tmp_path, monkeypatch, fw):
    monkeypatch.setenv("LOCKERCTL_HOME", str(tmp_path / "keys"))
    made = []

    def make(**kw):
        s = Sim(tmp_path, fw, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def _read_pieces(s, quiet_s=0.5):
    """Every fragment the locker sends until it has been quiet for quiet_s."""
    s.settimeout(quiet_s)
    pieces = []
    try:
        while True:
            n = s.recv(1)
            if not n:
                break
            buf = b""
            while len(buf) < n[0]:
                buf += s.recv(n[0] - len(buf))
            pieces.append(buf)
    except socket.timeout:
        pass
    s.settimeout(5)
    return pieces


def test_one_bad_request_gets_one_answer_then_silence_until_first(make_sim):
    # Before: a 300-byte request got 3 error answers, each with a new challenge.
    lk = make_sim()
    s = lk.raw(20)
    for piece in fragment.split(bytes((P.VERSION, P.HELLO)) + bytes(298), 20):
        s.sendall(bytes((len(piece),)) + piece)
    pieces = _read_pieces(s)
    answers = [p for p in pieces if not phone.is_credit(p)]
    assert sum(1 for p in answers if p[0] & fragment.FIRST) == 1
    reasm = fragment.Reassembler(P.MAX_RESPONSE)
    msg = [reasm.feed(p) for p in answers][-1]
    assert msg[1] == 0xFF and phone.parse_response(msg)[1] == P.E_TOO_LARGE  # protocol.md 2
    assert sum(1 for p in pieces if phone.is_credit(p)) == 1      # after fragment 8
    # a new FIRST resyncs the same connection
    for piece in fragment.split(P.request(P.HELLO), 20):
        s.sendall(bytes((len(piece),)) + piece)
    reasm = fragment.Reassembler(P.MAX_RESPONSE)
    msg = [reasm.feed(p) for p in _read_pieces(s)][-1]
    assert phone.parse_response(msg)[1] == P.OK
    s.close()


@pytest.mark.parametrize("payload", [20, 244])
def test_longest_request_through_the_socket_with_credits(make_sim, payload):
    lk = make_sim()
    t = SimSocketTransport("127.0.0.1", lk.port, link_payload=payload, timeout=5).connect()
    frame = bytes((P.VERSION, P.HELLO)) + bytes(P.MAX_REQUEST - 2)
    answer = t.exchange(frame)
    assert phone.parse_response(answer)[:2] == (P.HELLO, P.E_LENGTH)  # evaluated: HELLO + junk
    assert t.credits == phone.credit_points(-(-P.MAX_REQUEST // (payload - 1)))
    assert LockerClient(t).hello().slot_count == 3
    t.close()


def _close_wait_sockets(pid):
    """CLOSE-WAIT TCP sockets owned by process pid (/proc/<pid>/fd -> socket inodes,
    matched against /proc/net/tcp's state and inode columns)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == _TCP_CLOSE_WAIT and cols[9] in inodes:
                count += 1
    return count


def test_closed_connections_do_not_stay_in_close_wait(make_sim):
    lk = make_sim()
    if not os.path.isdir("/proc/%d/fd" % lk.pid):
        pytest.skip("needs Linux /proc")
    for i in range(12):                        # served and closed by the phone
        t = SimSocketTransport("127.0.0.1", lk.port, timeout=5).connect()
        LockerClient(t).hello()
        t.close()
    for i in range(6):                         # gone before the preamble
        socket.create_connection(("127.0.0.1", lk.port), timeout=5).close()
    held = [lk.raw() for _ in range(2)]        # MAX_LINKS busy: the next ones are refused
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", lk.port), timeout=5)
        s.settimeout(5)
        try:
            assert s.recv(1) == b""            # refused: the locker closed it (FIN)...
        except ConnectionResetError:
            pass                               # ...or reset it (RST): refused all the same
        s.close()
    for s in held:
        s.close()
    for i in range(10):                        # the control channel too
        sim.control(lk.state, {"cmd": "status"})
    deadline = time.monotonic() + 5
    while _close_wait_sockets(lk.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _close_wait_sockets(lk.pid) == 0


# ---- issue 12.3: one connection cannot hold the locker ----------------------------------

def test_a_trickling_never_completing_request_is_dropped(make_sim):
    # Before: one fragment every 29 s (idle 30 s) held the link for ever. Here the limits
    # are shortened (idle 1.5 s, request 1 s): one fragment every 0.7 s.
    lk = make_sim(link_ms=[1500, 1000, 20000])
    s = lk.raw(20)
    pieces = list(fragment.split(bytes((P.VERSION, P.HELLO)) + bytes(200), 20))
    t0 = time.monotonic()
    dropped = False
    for piece in pieces[:-1]:
        try:
            s.sendall(bytes((len(piece),)) + piece)
            s.settimeout(0.7)
            got = s.recv(64)
            if got == b"":
                dropped = True
                break
        except socket.timeout:
            continue
        except OSError:
            dropped = True
            break
    assert dropped
    assert time.monotonic() - t0 < 3.0
    s.close()


def test_hello_every_moment_cannot_hold_the_connection(make_sim):
    lk = make_sim(link_ms=[1500, 1000, 3000])
    t = SimSocketTransport("127.0.0.1", lk.port, timeout=5).connect()
    c = LockerClient(t)
    t0 = time.monotonic()
    hellos = 0
    with pytest.raises(Exception, match="closed the connection|Broken pipe|reset"):
        while time.monotonic() - t0 < 10:
            c.hello()
            hellos += 1
            time.sleep(0.2)
    assert 2.5 < time.monotonic() - t0 < 6
    assert hellos > 5
    t.close()
    t2 = SimSocketTransport("127.0.0.1", lk.port, timeout=5).connect()
    assert LockerClient(t2).hello().slot_count == 3        # the next phone gets its turn
    t2.close()


# ---- issue 12.4: a door answer is sent when that door opens (ADR 0005) ----------------------

def test_back_to_back_deposits_each_hear_open_when_their_door_opens(make_sim):
    """On the real MicroPython simulator (budget: one door at a time, 500 ms pulses), two
    deposits sent back to back: the second door must wait for the first pulse, and its
    answer with it; right when each answer arrives, that door is already open."""
    from core import credentials

    from lockerctl import operator as op
    lk = make_sim()
    with open(os.path.join(lk.state, "secret.bin"), "rb") as f:
        master = f.read()
    lid = bytes.fromhex(sim.read_json(os.path.join(lk.state, "locker.json"))["locker_id"])
    couriers = [op.issue(master, lid, credentials.COURIER, "courier-%d" % i, i, 86400)
                for i in (1, 2)]
    t = SimSocketTransport("127.0.0.1", lk.port, timeout=10).connect()
    try:
        client = LockerClient(t)
        client.hello()
        seen = []
        for cred in couriers:
            started = time.monotonic()
            dep = client.deposit(cred, size=1)
            took = time.monotonic() - started
            row = sim.control(lk.state, {"cmd": "status"})["slots"][dep.slot - 1]
            seen.append((dep.slot, took, row[5], row[7]))
    finally:
        t.close()
    (s1, _, open1, _), (s2, took2, open2, _) = seen
    assert s1 != s2
    assert open1 == 1 and open2 == 1, seen          # each door open when its answer came
    assert took2 >= 0.3, seen                       # the second waited for the first pulse
