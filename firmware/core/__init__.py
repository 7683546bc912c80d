# The locker's core: slots, pickup codes, credentials, protocol, store, throttle, clock.
# Runs unchanged on CPython (host tools and tests), the MicroPython unix port and the ESP32.
# Imports nothing from drivers/, targets/ or radio/ (host_tests/test_layout.py enforces it).
