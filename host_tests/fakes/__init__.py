"""Fakes of third-party hardware APIs for CPython tests: aioble (the BLE radio), bleak (the
laptop's BLE client) and machine (pins, I2C). They model the real APIs' failure modes.

The simulated board itself (fake lock outputs, door sensors, RTC; it runs ON MicroPython in
the simulator) is firmware/sim_hw.py + firmware/sim_board.py. Nothing else fakes hardware."""
