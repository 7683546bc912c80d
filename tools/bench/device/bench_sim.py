# Where the simulator's heap goes (docs/performance.md, "The simulator's heap"): the
# simulator image (`lockerctl sim`'s: main.mpy, the board's bytecode) loaded stage by stage in
# the order `micropython -m main sim STATE` loads it, each stage's retained heap after a
# collection, and the interned names after it. Runs ON MicroPython with the simulator image
# first on sys.path (tools/bench/run.py, section_sim); a provisioned state folder as argument.
#
# Each stage prints "STAGE <key> <bytes retained>" and then micropython.qstr_info()'s line;
# the host pairs them. Imports inside a stage load only what earlier stages did not.
import gc
import sys

import micropython


def stage(key):
    gc.collect()
    print("STAGE %s %d" % (key, gc.mem_alloc()))
    micropython.qstr_info()


def main(state):
    stage("start")                      # interpreter + this script
    import asyncio                      # noqa: F401  (frozen in the unix port and the ESP32's)
    stage("asyncio")
    from core import protocol, unload, clock, locker, store  # noqa: F401  main.py's imports,
    from drivers import gpio_lock       # noqa: F401           in its order
    stage("firmware")
    sys.argv[:] = ["main", "sim", state]
    import main as fw_main              # main.mpy: its own code (module-level imports done)
    stage("main")
    from core import fragment, link     # noqa: F401  what a board's radio service uses too
    from drivers import flash_fs, nvs_anchor      # noqa: F401  and its flash and NVS
    stage("board_shared")
    from targets import sim_hw, sim_nvs           # noqa: F401  the simulator's own
    stage("sim_hw")
    board = fw_main._board_from_argv()            # targets.sim_board + SimBoard()
    stage("sim_board")
    runtime = fw_main.Runtime(board)              # config read, AnchoredLocker built
    stage("locker")
    runtime.boot()                                # recovery, first snapshot, boot-only drops
    stage("booted")

    async def serving():
        task = asyncio.create_task(runtime.main())
        await asyncio.sleep_ms(300)                   # servers up, hardware loop running
        stage("serving")
        task.cancel()

    runtime.boot = lambda: None                   # booted above: main() serves only
    asyncio.run(serving())
    print("RESULT {}")
