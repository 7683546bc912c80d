# Runs ON MicroPython (unix port, ESP32-sized heap): main.Runtime bringing the radio up when
# it cannot (issue 13.4). mode "missing": the real ble_service on a port without aioble or
# bluetooth (ImportError); "oom-once": the first attempt runs out of memory (a real
# MemoryError from the capped heap), the second comes up. A fake watchdog counts feeds; when
# the runtime has given up and stops feeding it, this script plays the reset: it prints one
# JSON line and exits.
import asyncio
import json
import sys
import time

sys.path.insert(0, sys.argv[1])           # the compiled firmware
STATE, MODE = sys.argv[2], sys.argv[3]

import main  # noqa: E402
from targets import sim_board  # noqa: E402

WDT_MS = 300


class Watchdog:
    def __init__(self):
        self.feeds = 0
        self.last = time.ticks_ms()

    def feed(self):
        self.feeds += 1
        self.last = time.ticks_ms()


class Board(sim_board.SimBoard):
    def __init__(self, state):
        sim_board.SimBoard.__init__(self, state)
        self.wdt = Watchdog()
        self.attempts = 0
        self.recorded = None

    def watchdog(self):
        return self.wdt

    def record_fault(self, why):
        self.recorded = why
        sim_board.SimBoard.record_fault(self, why)

    def report(self, event):
        drv = self.lock_driver()
        print(json.dumps({"event": event, "attempts": self.attempts, "feeds": self.wdt.feeds,
                          "fault": self.runtime.fault, "recorded": self.recorded,
                          "outputs_on": sum(drv.outputs)}))
        raise SystemExit(0)

    async def monitor(self):
        while True:
            await asyncio.sleep_ms(50)
            if time.ticks_diff(time.ticks_ms(), self.wdt.last) > WDT_MS:
                self.report("watchdog reset")

    async def serve(self, runtime):
        self.runtime = runtime
        self.attempts += 1
        if self.attempts == 1:
            asyncio.create_task(self.monitor())
            runtime.bank.driver.set_output(1, True)     # a stuck output must end up off
        if MODE == "missing":
            from radio import ble_service
            ble_service.BleService(runtime, "0102030405060708",
                                   (time.ticks_ms, time.ticks_diff))
        elif MODE == "oom-once" and self.attempts == 1:
            bytearray(4 * 1024 * 1024)
        self.report("serving")


main.run(Board(STATE))
