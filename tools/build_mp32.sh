#!/bin/sh
# Builds a 32-bit MicroPython unix port (and the matching mpy-cross) from MicroPython's own
# source, OUTSIDE this repo, so heap figures come out in ESP32-sized words (4-byte pointers,
# 16-byte GC blocks) instead of the 64-bit PyPI build's 8-byte ones. See docs/heap-32bit.md.
#
# Not part of `make test` or CI: it needs gcc-multilib and a MicroPython checkout, and takes
# a few minutes. Run it by hand:
#
#   tools/build_mp32.sh <micropython git dir or source tree> [out dir] [tag]
#
#   <git dir>  a clone (bare or not) of micropython/micropython; TAG is exported from it
#   out dir    default /work/mp32 (created; MicroPython's code never goes into this repo)
#   tag        default v1.28.0
#
# Results: <out>/mpy-cross/build/mpy-cross, <out>/ports/unix/build-32/micropython and, as a
# same-source 64-bit control, <out>/ports/unix/build-64/micropython (BUILD64=0 skips it).
set -eu

if [ -n "${CI:-}" ]; then
    echo "build_mp32.sh: a manual measurement tool, not for CI" >&2
    exit 2
fi
SRC=${1:?usage: tools/build_mp32.sh <micropython git dir or source tree> [out dir] [tag]}
OUT=${2:-/work/mp32}
TAG=${3:-v1.28.0}
JOBS=${JOBS:-2}

# 1. The toolchain for -m32 (Debian): gcc-multilib brings the i386 libc headers and crt files.
if ! echo 'int main(void){return 0;}' | gcc -m32 -x c -o /dev/null - 2>/dev/null; then
    echo "gcc -m32 does not link: run  apt-get update && apt-get install -y gcc-multilib" >&2
    exit 1
fi

# 2. The source: a tag exported from git (no submodules: none of the ones this build needs).
mkdir -p "$OUT"
if [ ! -f "$OUT/py/mpconfig.h" ]; then
    if [ -f "$SRC/py/mpconfig.h" ]; then
        cp -a "$SRC/." "$OUT/"
    else
        git -C "$SRC" archive "$TAG" | tar -x -C "$OUT"
    fi
fi
cd "$OUT"

# 3. Frozen modules: only asyncio. The standard variant's manifest also requires mip and ssl
#    from the micropython-lib submodule, which is not there (and not needed by the firmware).
cat > manifest32.py <<'EOF'
# Frozen modules for the 32-bit measurement build: only what the firmware needs.
include("$(MPY_DIR)/extmod/asyncio")
EOF
# py/mkrules.mk refuses to freeze anything unless $(MPY_LIB_DIR)/README.md exists.
mkdir -p no-mpy-lib
echo "placeholder: manifest32.py uses nothing from micropython-lib" > no-mpy-lib/README.md

# 4. mpy-cross (a host tool: its bytecode .mpy output is the same for 32- and 64-bit VMs).
make -C mpy-cross -j"$JOBS"

# 5. The unix port. Off: ffi (libffi), btree (lib/berkeley-db-1.xx), ssl (lib/mbedtls or
#    lib/axtls): their submodules are missing and the firmware uses none of them. hashlib's
#    sha256 then comes from lib/crypto-algorithms, which is in the main tree.
FLAGS="MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_SSL_AXTLS=0
       MICROPY_SSL_MBEDTLS=0 FROZEN_MANIFEST=$OUT/manifest32.py MPY_LIB_DIR=$OUT/no-mpy-lib"
# shellcheck disable=SC2086
make -C ports/unix -j"$JOBS" MICROPY_FORCE_32BIT=1 BUILD=build-32 PROG=micropython $FLAGS
if [ "${BUILD64:-1}" = 1 ]; then
    # shellcheck disable=SC2086
    make -C ports/unix -j"$JOBS" BUILD=build-64 PROG=micropython $FLAGS
fi

# 6. The modules the firmware needs must be there.
MP32="$OUT/ports/unix/build-32/micropython"
"$MP32" -c "import sys, asyncio, socket, select, json, hashlib, os, struct, binascii
assert sys.maxsize == 2**31 - 1, 'not a 32-bit build'
assert hashlib.sha256(b'abc').digest()[:4] == b'\xba\x78\x16\xbf'
print('32-bit unix port OK:', sys.implementation.version)"
echo
echo "MICROPYTHON=$MP32"
echo "MPY_CROSS=$OUT/mpy-cross/build/mpy-cross"
