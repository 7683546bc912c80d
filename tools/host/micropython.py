"""The host's stand-in for MicroPython's built-in `micropython` module (CPython only).

The firmware writes `from micropython import const` exactly as on the device; on CPython
const() is the identity. Installed as a top-level module by pyproject.toml, so the host
tools and tests import the firmware's packages unchanged."""


def const(value):
    """MicroPython folds const() at compile time; on CPython it returns its argument."""
    return value
