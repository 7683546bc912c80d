# The locker's radio on a real board: one GATT service over micropython-lib's aioble.
#
#   request  characteristic: the phone WRITES fragments (fragment.py) into it. Its buffer is
#            MAX_LINK_PAYLOAD (244) bytes whatever the ATT MTU: a phone writes whole 244-byte
#            fragments with response, which its stack sends as a long (prepared) write when
#            the MTU is smaller (Core Spec Vol 3 Part G 4.9.4), and NimBLE delivers whole.
#   response characteristic: the locker NOTIFIES answer fragments, sized to the agreed MTU.
#
# Flow control (docs/protocol.md section 2, core/link.py): NimBLE acknowledges a write before
# Python reads it and aioble queues at most 10, dropping the oldest; so the locker grants
# credits itself: after every link.WINDOW (8) fragments of a request it has READ, it notifies
# a 1-byte credit and the phone sends the next ones. A request of 244-byte fragments is at
# most 2 fragments and never waits. One bad request gets one error answer, then the locker
# is silent until a new FIRST fragment.
#
# Advertising names the locker ("LKR-" + locker id) and carries the service UUID. One
# connection at a time: the locker stops advertising while a phone is connected and drops
# a phone that sends no complete request for link.IDLE_MS, takes longer than
# link.REQUEST_MS over one request, or stays longer than link.CONNECTION_MS. A phone that
# vanishes mid-exchange takes its half-received request (and any request it completed but
# the locker had not read yet) with it: nothing is evaluated for a phone that is gone.
# Security never depends on pairing: every request that changes anything is MACed over a
# fresh challenge (docs/adr, security.md).
#
# aioble and bluetooth are imported only when the service is constructed, so this module
# imports anywhere (unix port, CPython tests with host_tests/fakes/fake_aioble.py).
import asyncio
import errno

from core import fragment
from core import link
from core import protocol as P
from micropython import const

SERVICE_UUID = "6c6b7201-6f66-4c69-6e65-4c6f636b6572"
REQUEST_UUID = "6c6b7202-6f66-4c69-6e65-4c6f636b6572"
RESPONSE_UUID = "6c6b7203-6f66-4c69-6e65-4c6f636b6572"
NAME_PREFIX = "LKR-"

_LOCAL_MTU = const(247)              # ESP32 NimBLE maximum that fits one link-layer packet
MAX_LINK_PAYLOAD = const(244)       # _LOCAL_MTU - 3 (ATT header): the request buffer size
_ADV_INTERVAL_US = const(250000)
IDLE_MS = link.IDLE_MS              # kept for callers; the limits live in core/link.py
_MTU_TIMEOUT_MS = const(2000)
_NOTIFY_TRIES = const(5)             # NimBLE refuses notifications while its buffers are full
NOTIFY_BACKOFF_S = 0.02
_DISCONNECT_TIMEOUT_MS = const(2000)


def advertised_name(locker_id_hex):
    return NAME_PREFIX + locker_id_hex.upper()


def link_payload(mtu):
    """Fragment size (header included) for an ATT MTU; 20 bytes when no exchange happened."""
    if not mtu or mtu - 3 <= fragment.DEFAULT_LINK_PAYLOAD:
        return fragment.DEFAULT_LINK_PAYLOAD
    return min(mtu - 3, MAX_LINK_PAYLOAD)


def _radio():
    try:
        import aioble
        import bluetooth
    except ImportError as e:
        raise ImportError("BLE needs the bluetooth module and aioble "
                          "(`mpremote mip install aioble-peripheral aioble-server`): %s"
                          % e)
    # aioble's __init__ hides a failed submodule import behind a bare `except:` (a
    # MemoryError becomes a missing attribute): say what is missing instead.
    for name in ("advertise", "Service", "BufferedCharacteristic", "register_services"):
        if not hasattr(aioble, name):
            raise ImportError("aioble has no %s: its GATT server or peripheral part did not "
                              "load (out of memory, or an incomplete install)" % name)
    return aioble, bluetooth


class BleService:
    """clock: (ticks_ms, ticks_diff) of the board; idle_ms/request_ms/connection_ms: the
    connection limits of core/link.py (shorter in host tests)."""

    def __init__(self, runtime, locker_id_hex, clock, idle_ms=link.IDLE_MS,
                 mtu_timeout_ms=_MTU_TIMEOUT_MS, request_ms=link.REQUEST_MS,
                 connection_ms=link.CONNECTION_MS, log=None):
        self.runtime = runtime
        self.name = advertised_name(locker_id_hex)
        self.ticks_ms, self.ticks_diff = clock
        self.idle_ms = idle_ms
        self.request_ms = request_ms
        self.connection_ms = connection_ms
        self.mtu_timeout_ms = mtu_timeout_ms
        self._log = log or (lambda *a: print("[ble]", *a))
        self.aioble, bt = _radio()
        self.connection = None          # the one phone being served, if any
        # counters a bench tester reads after a run
        self.connections = 0
        self.requests = 0
        self.fragment_errors = 0
        self.credits = 0
        self.mtu_failures = 0
        self.mtu_by_phone = 0           # the phone started the exchange (EALREADY): fine
        self.idle_drops = 0
        self.slow_drops = 0             # request too slow or connection too long
        self.lost_answers = 0
        self._setup(bt)

    def _setup(self, bt):
        ab = self.aioble
        ab.config(mtu=_LOCAL_MTU)        # what we offer; the phone may agree to less
        self.service_uuid = bt.UUID(SERVICE_UUID)
        svc = ab.Service(self.service_uuid)
        # capture=True: every write is queued with its data and connection, so back-to-back
        # fragments are not overwritten before this task reads them (up to 10: the credits
        # of core/link.py keep a phone below that).
        self.request = ab.BufferedCharacteristic(svc, bt.UUID(REQUEST_UUID), write=True,
                                                 write_no_response=True, capture=True,
                                                 max_len=MAX_LINK_PAYLOAD)
        self.response = ab.Characteristic(svc, bt.UUID(RESPONSE_UUID), notify=True)
        ab.register_services(svc)

    async def serve(self):
        """Advertise, serve one phone, repeat. Never returns."""
        while True:
            try:
                conn = await self.aioble.advertise(_ADV_INTERVAL_US, name=self.name,
                                                   services=[self.service_uuid])
            except Exception as e:        # radio hiccup: log, wait, advertise again
                self._log("advertise failed:", e)
                await asyncio.sleep(1)
                continue
            await self.serve_connection(conn)

    async def serve_connection(self, conn):
        ab = self.aioble
        self.connection = conn
        self.connections += 1
        locker = self.runtime.locker
        session = locker.new_session()
        rx = link.Receiver(P.MAX_REQUEST, self.ticks_ms(), self.ticks_diff,
                           self.idle_ms, self.request_ms, self.connection_ms)
        mtu_task = asyncio.create_task(self._exchange_mtu(conn))
        try:
            while conn.is_connected():
                now = self.ticks_ms()
                why = rx.expired(now)
                if why is None:
                    try:
                        with conn.timeout(None):        # a disconnect cancels the wait
                            who, data = await self.request.written(
                                timeout_ms=rx.wait_ms(now))
                    except asyncio.TimeoutError:
                        continue                        # expired() says why, next turn
                if why is not None:
                    if why == "idle":
                        self.idle_drops += 1
                    else:
                        self.slow_drops += 1
                    self._log("dropping %s: %s" % (conn.device, why))
                    break
                if who is not conn:
                    continue                        # queued by a phone that already left
                todo = rx.feed(data, self.ticks_ms())
                if todo == link.NOTHING:
                    continue
                if todo == link.CREDIT_DUE:
                    self.credits += 1
                    answer = link.CREDIT_FRAGMENT
                elif todo == link.ERROR:
                    self.fragment_errors += 1
                    answer = locker.error_answer(session, rx.status, rx.error)
                else:
                    self.requests += 1
                    answer = self.runtime.handle(session, rx.message)
                    await self.runtime.door_started(session)
                if not await self._send(conn, answer, todo == link.CREDIT_DUE):
                    break
        except ab.DeviceDisconnectedError:
            pass
        finally:
            mtu_task.cancel()
            self.connection = None
            await self._hang_up(conn)

    async def _exchange_mtu(self, conn):
        """The locker starts the exchange unless the phone already did (EALREADY: the MTU
        is agreed, conn.mtu holds it); on a real failure answers go in 20-byte fragments."""
        try:
            await conn.exchange_mtu(timeout_ms=self.mtu_timeout_ms)
        except asyncio.CancelledError:
            raise
        except OSError as e:
            # NimBLE's ble_gattc_exchange_mtu() refuses a second exchange on a connection
            # (BLE_HS_EALREADY; Core Spec Vol 3 Part G 4.3.1: once per connection)
            if e.args and e.args[0] == errno.EALREADY:
                self.mtu_by_phone += 1
                return
            self._mtu_failed(e)
        except Exception as e:          # timeout, phone gone
            self._mtu_failed(e)

    def _mtu_failed(self, e):
        self.mtu_failures += 1
        self._log("MTU exchange failed (%r): 20-byte fragments" % e)

    async def _send(self, conn, answer, raw=False):
        """Notify the answer fragment by fragment (raw: one ready fragment, the credit);
        False when the phone is gone."""
        pieces = (answer,) if raw else fragment.split(answer, link_payload(conn.mtu))
        for piece in pieces:
            tries = 0
            while True:
                if not conn.is_connected():
                    self.lost_answers += 1
                    return False
                try:
                    self.response.notify(conn, piece)
                    break
                except OSError as e:
                    tries += 1
                    if tries >= _NOTIFY_TRIES:
                        self.lost_answers += 1
                        self._log("notify failed:", e)
                        return False
                    await asyncio.sleep(NOTIFY_BACKOFF_S * tries)
        return True

    async def _hang_up(self, conn):
        if not conn.is_connected():
            return
        try:
            await conn.disconnect(timeout_ms=_DISCONNECT_TIMEOUT_MS)
        except Exception as e:          # link already dead: the stack times it out itself
            self._log("disconnect:", e)
