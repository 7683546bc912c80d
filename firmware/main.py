# Firmware entry point: the SAME file boots a locker on the ESP32 and in the simulator.
# Order matters (docs/adr/0003): lock outputs off first, then config and keys, then store
# recovery, then the transport. A store that fails its checks keeps the locker up but
# refusing every request with a clear error, instead of silently starting empty. The radio
# comes up inside the same handling: bringing it up is the largest short-lived allocation of
# a boot (importing aioble, registering the service), so out of memory or a missing aioble
# is logged with its reason, retried _RADIO_TRIES times with the outputs off, and then the
# board stops feeding its watchdog (a reset) after recording why (board.record_fault).
import asyncio
import gc
import sys

from core import protocol as P
from core import unload
from core.clock import LockerClock
from core.locker import Locker
from core.store import StoreCorrupt
from drivers.gpio_lock import LockBank
from micropython import const

HW_PERIOD_MS = const(20)     # pulse timing resolution
_DOOR_PERIOD_MS = const(100)  # door sensor poll
TICK_PERIOD_MS = const(10000)   # clock floor upkeep
_RADIO_TRIES = const(3)       # attempts to bring the radio up before a watchdog reset
_RADIO_RETRY_MS = const(3000)    # between attempts (lets the heap settle after a collect)
_HEAP_MARGIN = const(16384)   # free heap a measured request needs (docs/performance.md)
_DOOR_WAIT_MS = const(30000)  # longest an answer waits for its door's pulse (a safety net:
                             # the queue drains in (doors queued x 2 x pulse_ms) / budget)
# Modules only boot runs, imported inside it and dropped after it (core.unload): config
# validation and the store's recovery; a board adds its own (board.BOOT_ONLY).
BOOT_ONLY = ("core.config", "core.store_recover")


def log(*args):
    print("[locker]", *args)


class Runtime:
    """Wires a board to the locker core and runs the main loop."""

    def __init__(self, board):
        self.board = board
        driver = board.lock_driver()
        driver.all_off()                       # before anything can fail
        from core import config                # boot only: dropped by boot()
        self.cfg = config.load(board.path("locker.json"))
        self.bank = LockBank(driver, self.cfg["pulse_ms"], self.cfg["rated_pulse_ms"],
                             self.cfg["max_concurrent"], board.ticks_ms, board.ticks_diff)
        self.clock = LockerClock(board.rtc_unix, board.uptime_s)
        args = (self.cfg, board.read_secret(), board.store_fs(), self.clock, self.bank,
                board.ticks_ms, board.ticks_diff, board.random_bytes)
        if hasattr(board, "anchor"):   # the journal anchor in NVS (ADR 0008)
            from core.anchored import AnchoredLocker
            self.locker = AnchoredLocker(*(args + (board.anchor(),)))
        else:
            self.locker = Locker(*args)
        self.heap_peak = 0            # see handle()
        self.heap_measured = 0        # requests that went into heap_peak
        self.requests = 0
        self.fault = None             # why this boot gave up (then the watchdog resets)
        # Boards that want the heap peak (the simulator) say so: measuring it runs a request
        # with the collector off, which a board in the field should not do.
        self.measure_heap = getattr(board, "measure_heap", False)
        # Boards with a hardware watchdog return it; the simulator has none.
        self.watchdog = board.watchdog() if hasattr(board, "watchdog") else None

    def boot(self):
        try:
            self.locker.boot()
            log("booted", self.cfg["locker_id"], "slots", len(self.locker.slots),
                "journal seq", self.locker.store.seq)
        except StoreCorrupt as e:
            if not self.locker.halted:    # the anchor check names its own reason
                self.locker.halted = "store corrupt: %s" % e
            log("HALTED:", self.locker.halted)
        # What only boot needed leaves the heap before the radio comes up (BOOT_ONLY).
        unload.drop(*BOOT_ONLY + getattr(self.board, "BOOT_ONLY", ()))

    def handle(self, session, frame):
        """Called by the transport for each reassembled request.

        heap_peak is the largest heap a request has needed: what was retained when it
        started plus everything it allocated, counted with the collector off (nothing is
        freed until it ends, so its end is its high point: a true peak, an upper bound on
        the live heap). Measured only where that is safe: a request that changes state
        allocates a bounded amount by design, so it runs that way when at least
        _HEAP_MARGIN bytes are free; STATUS and AUDIT_READ stream (slots, journal lines)
        and PICKUP_START's SPAKE2 makes ~6 MB of short-lived big integers: they rely on the
        collector, so they are never measured this way."""
        gc.collect()                  # keeps the small heap unfragmented between requests
        measure = (self.measure_heap and len(frame) > 1
                   and frame[1] not in (P.STATUS, P.AUDIT_READ, P.PICKUP_START)
                   and gc.mem_free() >= _HEAP_MARGIN)
        if measure:
            gc.disable()
        try:
            answer = self.locker.handle(session, frame)
            used = gc.mem_alloc()
        finally:
            gc.enable()
        self.requests += 1
        if measure:
            self.heap_measured += 1
            if used > self.heap_peak:
                self.heap_peak = used
        gc.collect()
        return answer

    async def door_started(self, session):
        """Hold the answer until the door it speaks of has started opening (its pulse is
        queued behind others within the power budget): the transports call this between
        handle() and sending, so a phone is never told "open" about a door that is not yet
        (docs/protocol.md section 4, ADR 0003)."""
        waited = 0
        while self.locker.door_pending(session) and waited < _DOOR_WAIT_MS:
            await asyncio.sleep_ms(HW_PERIOD_MS)
            waited += HW_PERIOD_MS

    async def hardware_loop(self):
        ticks, diff = self.board.ticks_ms, self.board.ticks_diff
        last_door = last_tick = ticks()
        while True:
            self.bank.service()
            if self.watchdog is not None and self.fault is None:
                self.watchdog.feed()
            now = ticks()
            if diff(now, last_door) >= _DOOR_PERIOD_MS:
                last_door = now
                if not self.locker.halted:
                    self.locker.poll_doors()
            if diff(now, last_tick) >= TICK_PERIOD_MS:
                last_tick = now
                if not self.locker.halted:
                    self.locker.tick()
                gc.collect()
            await asyncio.sleep_ms(HW_PERIOD_MS)

    async def main(self):
        self.boot()
        gc.collect()                  # first boot (store creation) leaves garbage
        asyncio.create_task(self.hardware_loop())
        await self.serve_radio()
        while True:                   # given up: outputs off, waiting for the watchdog
            self.bank.all_off()
            await asyncio.sleep_ms(HW_PERIOD_MS)

    async def serve_radio(self):
        """Bring the radio up and serve phones (board.serve never returns once it runs)."""
        why = None
        for attempt in range(1, _RADIO_TRIES + 1):
            gc.collect()
            try:
                await self.board.serve(self)
                return
            except Exception as e:    # MemoryError, ImportError, OSError from the stack
                why = "radio did not come up (try %d of %d): %s: %s" % (
                    attempt, _RADIO_TRIES, type(e).__name__, e)
                log(why)
                self.bank.all_off()
            gc.collect()
            await asyncio.sleep_ms(_RADIO_RETRY_MS)
        self.fail(why)

    def fail(self, why):
        """Give up this boot: outputs off, the reason recorded where the next boot (and a bench
        tester) can read it, then a reset by the watchdog; without one the process ends."""
        self.fault = why
        self.bank.all_off()
        record = getattr(self.board, "record_fault", None)
        if record is not None:
            try:
                record(why)
            except Exception as e:    # the record is best effort; the reset is not
                log("could not record the fault:", e)
        if self.watchdog is None:
            log("FATAL:", why, "- lock outputs off, stopping")
            raise SystemExit(3)
        log("FATAL:", why, "- lock outputs off, watchdog reset follows")


def _exception_handler(loop, context):
    # One global handler (micropython-async style): log and keep the locker running.
    log("task error:", context.get("exception"))


def run(board):
    loop = asyncio.get_event_loop()
    loop.set_exception_handler(_exception_handler)
    runtime = Runtime(board)
    try:
        asyncio.run(runtime.main())
    finally:
        runtime.bank.all_off()


def _board_from_argv():
    # Simulator: micropython main.py sim <state_dir> [port]. On the ESP32 the board module
    # written by `make deploy` is imported instead.
    if len(sys.argv) > 2 and sys.argv[1] == "sim":
        from targets import sim_board
        return sim_board.SimBoard(sys.argv[2])
    import board
    return board.Board()


if __name__ == "__main__":
    run(_board_from_argv())
