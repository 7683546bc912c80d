"""The bench suite's targets. The same tests run against:

  sim    (default; `make hil-sim`, part of `make test`): the firmware on the MicroPython
         unix port, started here on free ports, reached over its loopback socket;
  board  (`make hil PORT=/dev/ttyUSB0 [LOCKER=id]`): a real ESP32 over BLE (bleak).
         Without LOCKER the suite provisions the board with a fresh bench identity over
         PORT (its parcels and log are wiped); with LOCKER it uses that locker as
         provisioned, taking the master secret from lockerctl's key store.

Tests get `target`: transport(link_payload) -> connected transport, client(), courier(),
technician(), and doors (None on a real board: nobody is there to close them)."""
import json
import os
import time

import pytest
from core import credentials
from lockerctl import operator as op
from lockerctl.client import LockerClient

BENCH_LAYOUT = "S*2,M*2,L*2"


def pytest_configure(config):
    config.addinivalue_line("markers", "hil: bench suite (simulator or real board)")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.hil)


class Target:
    def __init__(self, kind, locker_id, master, make_transport, doors=None):
        self.kind = kind
        self.locker_id = locker_id
        self.master = master
        self._make = make_transport
        self.doors = doors
        self._serial = int(time.time()) % 100000 * 100

    def transport(self, link_payload=None):
        return self._make(link_payload).connect()

    def client(self, link_payload=None):
        return LockerClient(self.transport(link_payload))

    def _next_serial(self):
        self._serial += 1
        return self._serial

    def courier(self, holder=None):
        serial = self._next_serial()
        return op.issue(self.master, self.locker_id, credentials.COURIER,
                        holder or "hil-c%d" % serial, serial, 86400,
                        now=int(time.time()) - 60)

    def technician(self):
        serial = self._next_serial()
        return op.issue(self.master, self.locker_id, credentials.TECHNICIAN,
                        "hil-t%d" % serial, serial, 86400, now=int(time.time()) - 60)


class SimDoors:
    def __init__(self, state):
        self.state = state

    def status(self):
        from lockerctl import sim
        return sim.control(self.state, {"cmd": "status"})

    def is_open(self, sid):
        return bool(self.status()["slots"][sid - 1][5])

    def close(self, sid):
        from lockerctl import sim
        sim.control(self.state, {"cmd": "door", "slot": sid, "action": "close"})


def _sim_target(tmp):
    import mp_runner
    from lockerctl import sim
    from lockerctl.transport import SimSocketTransport
    mp_runner.micropython()                      # skips when there is no unix port
    state = str(tmp)
    lid, master = op.new_identity()
    with open(os.path.join(state, "locker.json"), "w") as f:
        json.dump({"locker_id": lid.hex(), "layout": BENCH_LAYOUT}, f)
    with open(os.path.join(state, "secret.bin"), "wb") as f:
        f.write(master)
    sim.start(state, port=0)
    port = sim.sim_config(state)["port"]

    def make(link_payload):
        return SimSocketTransport("127.0.0.1", port, link_payload=link_payload or 20,
                                  timeout=20.0)
    return Target("sim", lid, master, make, SimDoors(state)), lambda: sim.stop(state)


def _board_target():
    port = os.environ.get("PORT")
    if not port:
        pytest.skip("make hil needs PORT=<serial port of the board> (e.g. /dev/ttyUSB0); "
                    "use `make hil-sim` for the simulator")
    try:
        import bleak  # noqa: F401
    except ImportError:
        pytest.skip("make hil needs bleak: pip install -e '.[ble]'")
    from lockerctl import board_io
    from lockerctl.ble import BleTransport
    locker = os.environ.get("LOCKER")
    if locker:
        from lockerctl import keystore
        lid = bytes.fromhex(locker)
        master = keystore.KeyStore().master(locker)
    else:
        dev = board_io.Board(port)
        profile = json.loads(dev.run("fs", "cat", ":" + board_io.PROFILE_PATH))
        lid, master = op.new_identity()
        layout = "S*%d" % profile["doors"]
        lock = profile["lock"]
        board_io.write_provisioning(dev, {"locker_id": lid.hex(), "layout": layout,
                                          "pulse_ms": lock["pulse_ms"],
                                          "rated_pulse_ms": lock["rated_pulse_ms"],
                                          "max_concurrent": lock["max_concurrent"]},
                                    master, wipe_store=True)
        dev.reset()
        dev.close()

    def make(link_payload):
        return BleTransport(lid.hex(), timeout=15.0, scan_timeout=30.0,
                            link_payload=link_payload)
    return Target("board", lid, master, make), lambda: None


@pytest.fixture(scope="session")
def target(tmp_path_factory):
    kind = os.environ.get("HIL_TARGET", "sim")
    if kind == "board":
        t, stop = _board_target()
    elif kind == "sim":
        t, stop = _sim_target(tmp_path_factory.mktemp("hil-sim"))
    else:
        raise pytest.UsageError("HIL_TARGET must be sim or board")
    yield t
    stop()


@pytest.fixture
def doors(target):
    if target.doors is None:
        pytest.skip("needs someone at the cabinet to close doors (simulator only)")
    return target.doors
