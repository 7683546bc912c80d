# Board layer of the simulator: the unix-port stand-ins for the ESP32's pins, RTC, flash and
# radio. Fake lock outputs and door sensors come from sim_hw (the one home of fakes); the
# radio is a TCP socket on 127.0.0.1 carrying the same fragments as BLE; flash is a folder.
#
# Files in the state folder: locker.json (config), secret.bin (master secret), store/
# (journal), sim_nvs.txt (the NVS partition: the journal's anchor, docs/adr/0008-journal-anchor.md),
# flash.img (the store on littlefs, with sim.json "flash_kb"), sim.json (ports, sensors,
# optional link_ms limits), sim_rtc.json (RTC offset: the battery-backed RTC survives power
# cuts), sim_doors.json (the physical doors survive them too).
import asyncio
import gc
import json
import os
import time

from core import fragment
from core import link
from core import protocol as P
from drivers.flash_fs import FolderFs
from drivers.nvs_anchor import NvsAnchor

from targets import sim_hw, sim_nvs

from micropython import const

MAX_LINK_PAYLOAD = const(244)   # ESP32 NimBLE: ATT MTU 247 - 3
MAX_LINKS = const(2)         # BLE serves one phone at a time; the socket allows one more so
                             # a quick reconnect does not race the old socket's close
# Connection limits (idle, per request, lifetime) and credits: core/link.py, as on BLE.


async def _close(writer):
    """MicroPython's asyncio Stream.close() does nothing: wait_closed() closes the socket.
    Without it every finished connection stays in CLOSE-WAIT and holds a descriptor."""
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass


def _read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write_json(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.rename(path + ".tmp", path)


class PersistentDoors(sim_hw.SimLockDriver):
    """Sim doors whose physical state outlives the firmware process (power cuts)."""

    def __init__(self, count, sensors, path):
        # no pulse recordings: the simulator runs for days, they would grow with history
        sim_hw.SimLockDriver.__init__(self, count, sensors, time.ticks_ms, record=False)
        self._path = path
        saved = _read_json(path, None)
        if saved and len(saved.get("doors", [])) == count + 1:
            self.doors = bytearray(saved["doors"])
            self.jammed = set(saved.get("jammed", []))

    def save(self):
        _write_json(self._path, {"doors": list(self.doors), "jammed": sorted(self.jammed)})

    def set_output(self, sid, on):
        was = self.doors[sid]
        sim_hw.SimLockDriver.set_output(self, sid, on)
        if self.doors[sid] != was:
            self.save()


class SimBoard:
    measure_heap = True     # main.Runtime reports each request's heap peak (a bench, not a board)

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.sim = _read_json(self.path("sim.json"), {})
        self.port = self.sim.get("port", 7420)
        self.control_port = self.sim.get("control_port", self.port + 1)
        self._rtc_path = self.path("sim_rtc.json")
        self.rtc_offset = _read_json(self._rtc_path, {}).get("offset", 0)
        self._driver = None
        self._links = 0
        # [idle, request, connection] ms: link.py's limits unless a test shortens them
        self.link_ms = self.sim.get("link_ms") or (link.IDLE_MS, link.REQUEST_MS,
                                                   link.CONNECTION_MS)
        self._boot_time = time.time()
        # self.runtime is set by serve(): the radio and control channel exist only then

    def path(self, name):
        return self.state_dir + "/" + name

    # ---- board interface ----------------------------------------------------------------
    def lock_driver(self):
        if self._driver is None:
            cfg = _read_json(self.path("locker.json"), {})
            from core import config
            count = len(config.parse_layout(cfg.get("layout", config.DEFAULTS["layout"])))
            self._driver = PersistentDoors(count, self.sim.get("sensors", True),
                                           self.path("sim_doors.json"))
        return self._driver

    def read_secret(self):
        with open(self.path("secret.bin"), "rb") as f:
            secret = f.read()
        if len(secret) != 32:
            raise ValueError("secret.bin must hold 32 bytes")
        return secret

    def store_fs(self):
        kb = self.sim.get("flash_kb")
        if kb:                       # the store on a littlefs image (targets/sim_flash.py)
            from targets import sim_flash
            return FolderFs(sim_flash.mount_image(self.path("flash.img"), kb))
        return FolderFs(self.path("store"))

    def anchor(self):
        """The journal's anchor in the simulated NVS: sim_nvs.txt, outside store/."""
        return NvsAnchor(sim_nvs.SimNvs(self.path("sim_nvs.txt")))

    def rtc_unix(self):
        return int(time.time()) + self.rtc_offset

    def uptime_s(self):
        return int(time.time() - self._boot_time)     # no ticks wrap after 12 days

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)

    @staticmethod
    def random_bytes(n):
        return os.urandom(n)

    def record_fault(self, why):
        """Why this run gave up (main.Runtime.fail), for `lockerctl sim` and a bench tester."""
        _write_json(self.path("sim_fault.json"), {"fault": why})

    async def serve(self, runtime):
        self.runtime = runtime
        await asyncio.start_server(self._radio_client, "127.0.0.1", self.port)
        await asyncio.start_server(self._control_client, "127.0.0.1", self.control_port)
        print("[sim] radio on 127.0.0.1:%d, control on 127.0.0.1:%d"
              % (self.port, self.control_port))
        while True:
            await asyncio.sleep(3600)

    # ---- the radio: length-prefixed fragments, MTU agreed at connect ---------------------
    async def _radio_client(self, reader, writer):
        if self._links >= MAX_LINKS:           # a flood must not eat the heap
            await _close(writer)
            return
        self._links += 1
        try:
            await self._serve_link(reader, writer)
        finally:
            self._links -= 1
            await _close(writer)

    async def _serve_link(self, reader, writer):
        locker = self.runtime.locker
        session = locker.new_session()
        ticks = time.ticks_ms
        rx = link.Receiver(P.MAX_REQUEST, ticks(), time.ticks_diff, *self.link_ms)
        try:
            wanted = (await asyncio.wait_for_ms(reader.readexactly(1), rx.wait_ms(ticks())))[0]
            size = max(fragment.DEFAULT_LINK_PAYLOAD, min(wanted, MAX_LINK_PAYLOAD))
            writer.write(bytes((size,)))
            await writer.drain()
            while rx.expired(ticks()) is None:
                n = (await asyncio.wait_for_ms(reader.readexactly(1), rx.wait_ms(ticks())))[0]
                piece = await asyncio.wait_for_ms(reader.readexactly(n), rx.wait_ms(ticks()))
                todo = rx.feed(piece, ticks())
                if todo == link.NOTHING:
                    continue
                if todo == link.CREDIT_DUE:
                    writer.write(b"\x01" + link.CREDIT_FRAGMENT)
                    await writer.drain()
                    continue
                if todo == link.ERROR:
                    answer = locker.error_answer(session, rx.status, rx.error)
                else:
                    try:
                        answer = self.runtime.handle(session, rx.message)
                        await self.runtime.door_started(session)
                    except MemoryError:
                        # Runtime.handle never raises otherwise; answer rather than leave
                        # the phone waiting for its timeout.
                        gc.collect()
                        answer = locker.error_answer(session, P.E_INTERNAL, "out of memory")
                for f in fragment.split(answer, size):
                    writer.write(bytes((len(f),)) + f)
                await writer.drain()
        except (OSError, EOFError, asyncio.TimeoutError):
            pass

    # ---- the bench: doors, clock and pins a test can see and drive ----------------------
    async def _control_client(self, reader, writer):
        try:
            line = await reader.readline()
            try:
                answer = self.control(json.loads(line))
            except Exception as e:       # a bad control command must not stop the locker
                answer = {"ok": False, "error": "%s" % e}
            writer.write(json.dumps(answer))
            writer.write(b"\n")
            await writer.drain()
        finally:
            await _close(writer)
        if answer.get("stopping"):
            self.runtime.bank.all_off()
            raise SystemExit(0)

    def control(self, cmd):
        what = cmd.get("cmd")
        drv = self.lock_driver()
        if what == "door":
            sid, action = int(cmd["slot"]), cmd["action"]
            if not 1 <= sid <= drv.count:
                raise ValueError("no slot %d" % sid)
            if action == "close":
                drv.close(sid)
            elif action == "open":
                drv.force_open(sid)
            elif action in ("jam", "unjam"):
                drv.jam(sid, action == "jam")
            else:
                raise ValueError("door action must be close, open, jam or unjam")
            drv.save()
        elif what == "clock":
            offset = self.rtc_offset + int(cmd.get("advance", 0))
            if not 0 <= int(time.time()) + offset <= 0xFFFFFFFF:
                # a DS3231 holds 2000-2099, protocol times are u32: no RTC shows this
                raise ValueError("the RTC cannot hold that time (Unix time beyond u32, "
                                 "after 2106)")
            self.rtc_offset = offset
            _write_json(self._rtc_path, {"offset": self.rtc_offset})
        elif what == "stop":
            return {"ok": True, "stopping": True}
        elif what != "status":
            raise ValueError("unknown control command %r" % what)
        return self.status()

    def status(self):
        """Compact on purpose: this runs inside the locker's ESP32-sized heap.

        slots: [slot, size, state, out_of_service, expired, door_open, jammed, output_on]"""
        lk = self.runtime.locker
        drv = self.lock_driver()
        gc.collect()                # heap_now: the retained heap, not the garbage so far
        now = lk.clock.now()
        ttl = lk.cfg["ttl_s"]
        slots = []
        for sid in lk.slots.sids():
            i = sid - 1
            state = lk.slots.state[i]
            slots.append((sid, lk.slots.size[i], state, lk.slots.flags[i] & 1,
                          int(state == 1 and now > lk.slots.deposit_time(sid) + ttl),
                          drv.doors[sid], int(sid in drv.jammed), drv.outputs[sid]))
        return {"ok": True, "locker_id": lk.cfg["locker_id"], "time": now,
                "rtc": self.rtc_unix(), "rtc_refused": lk.clock.rtc_refused,
                "slots": slots, "halted": lk.halted,
                "journal_seq": lk.store.seq, "requests": self.runtime.requests,
                "heap_peak": self.runtime.heap_peak,
                "heap_measured": self.runtime.heap_measured, "heap_now": gc.mem_alloc(),
                "heap_total": gc.mem_alloc() + gc.mem_free(),
                "max_pulse_ms": drv.max_on_ms, "peak_outputs": drv.peak_on,
                "throttle": lk.throttle.to_list()}
