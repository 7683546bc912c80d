# Freezes the locker firmware into a custom MicroPython image (bytecode in flash: more free
# heap, faster boot). NOT compiled with the rest of firmware/ and never copied to a board.
# Needs the ESP-IDF toolchain, which this machine lacks; on a build host:
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/repo/firmware/manifest.py
# then flash build-ESP32_GENERIC/firmware.bin with esptool (docs/hardware.md).
# The board profile and provisioning files are still written by `make deploy` and
# `lockerctl provision --port`; a frozen image only replaces the copied .mpy modules.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 (manifest builtins)
require("aioble-peripheral")  # noqa: F821 (the parts make deploy installs)
require("aioble-server")  # noqa: F821
# The firmware's packages as they are laid out on a board (docs/architecture.md); the
# simulator's board and its fake hardware stay home. main.py is copied as source.
package("core")  # noqa: F821
package("drivers")  # noqa: F821
package("radio")  # noqa: F821
package("targets", files=("__init__.py", "board_esp32.py", "board_profile.py"))  # noqa: F821
