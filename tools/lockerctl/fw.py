"""Makes the firmware's modules importable on the host: ONE implementation of the code
algorithm, protocol and credentials serves the locker, the CLI and the tests."""
import os
import sys
import types

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(REPO, "firmware")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

if "micropython" not in sys.modules:
    # CPython has no `micropython` module: firmware modules use `const()` from it exactly
    # as on the device; on the host it is the identity.
    _shim = types.ModuleType("micropython")
    _shim.const = lambda value: value
    sys.modules["micropython"] = _shim

import credentials  # noqa: E402
import fragment  # noqa: E402
import pickup_code  # noqa: E402
import protocol  # noqa: E402

__all__ = ["REPO", "FIRMWARE", "credentials", "fragment", "pickup_code", "protocol"]
