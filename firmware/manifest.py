# Freezes the locker firmware into a custom MicroPython image (bytecode in flash: more free
# heap, faster boot). NOT compiled with the rest of firmware/ and never copied to a board.
# Needs the ESP-IDF toolchain, which this machine lacks; on a build host:
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/repo/firmware/manifest.py
# then flash build-ESP32_GENERIC/firmware.bin with esptool (docs/hardware.md).
# The board profile and provisioning files are still written by `make deploy` and
# `lockerctl provision --port`; a frozen image only replaces the copied .mpy modules.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 (manifest builtins)
require("aioble")  # noqa: F821
for _name in ("hmac_sha256", "kdf", "pickup_code", "credentials", "protocol", "fragment",
              "clock", "flash_fs", "store", "slot_manager", "code_verifier", "throttle",
              "gpio_lock", "door_monitor", "config", "locker", "ble_service", "board_profile",
              "board_esp32", "lock_gpio", "lock_mcp23017", "rtc_ds3231"):
    module(_name + ".py")  # noqa: F821
