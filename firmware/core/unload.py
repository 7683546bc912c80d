# Boot-only code leaves the heap (docs/performance.md, "The ESP32 heap budget"): a module that
# only boot needs (config validation, the board profile check, the RTC chip read) is imported
# inside the boot code and dropped here afterwards, so the collector frees its bytecode,
# functions and long strings. Its interned names stay (MicroPython never frees a qstr), and a
# later import of it simply loads it again.
import sys


def drop(*names):
    """Forget the loaded modules `names` (dotted, e.g. "core.config"): remove each from
    sys.modules and from its package's attributes, the two references the import system
    keeps. The caller must keep none of its own (no module-level import of it, no class or
    function taken from it), or nothing is freed. A name not loaded is skipped. Only on
    MicroPython: CPython (the host's tests and tools) keeps one module object per name, so
    exception classes compare equal across imports."""
    if sys.implementation.name != "micropython":
        return
    for name in names:
        if sys.modules.pop(name, None) is None:
            continue
        pkg, _, attr = name.rpartition(".")
        try:
            delattr(sys.modules[pkg], attr)
        except (KeyError, AttributeError):
            pass
