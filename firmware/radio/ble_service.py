# The locker's radio on a real board: one GATT service over micropython-lib's aioble.
#
#   request  characteristic: the phone WRITES fragments (fragment.py) into it. Its buffer is
#            MAX_LINK_PAYLOAD bytes and the ATT MTU is capped at LOCAL_MTU, so no write can
#            be longer than the buffer: BLE stacks silently truncate writes to the buffer
#            (aioble's default is 20 bytes), which would corrupt a request without an error.
#   response characteristic: the locker NOTIFIES answer fragments, sized to the agreed MTU.
#
# Advertising names the locker ("LKR-" + locker id) and carries the service UUID. One
# connection at a time: the locker stops advertising while a phone is connected, drops a
# silent phone after IDLE_MS and starts over cleanly when a phone vanishes mid-exchange (the
# half-received request dies with its session). Security never depends on pairing: every
# request that changes anything is MACed over a fresh challenge (docs/adr, security.md).
#
# aioble and bluetooth are imported only when the service is constructed, so this module
# imports anywhere (unix port, CPython tests with host_tests/fake_aioble.py).
import asyncio

from core import fragment
from core import protocol as P
from micropython import const

SERVICE_UUID = "6c6b7201-6f66-4c69-6e65-4c6f636b6572"
REQUEST_UUID = "6c6b7202-6f66-4c69-6e65-4c6f636b6572"
RESPONSE_UUID = "6c6b7203-6f66-4c69-6e65-4c6f636b6572"
NAME_PREFIX = "LKR-"

LOCAL_MTU = const(247)              # ESP32 NimBLE maximum that fits one link-layer packet
MAX_LINK_PAYLOAD = const(244)       # LOCAL_MTU - 3 (ATT header): the request buffer size
ADV_INTERVAL_US = const(250000)
IDLE_MS = const(30000)              # a connection with no complete request this long is dropped
MTU_TIMEOUT_MS = const(2000)
NOTIFY_TRIES = const(5)             # NimBLE refuses notifications while its buffers are full
NOTIFY_BACKOFF_S = 0.02
DISCONNECT_TIMEOUT_MS = const(2000)


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
                          "(`mpremote mip install aioble`): %s" % e)
    return aioble, bluetooth


class BleService:
    def __init__(self, runtime, locker_id_hex, idle_ms=IDLE_MS, mtu_timeout_ms=MTU_TIMEOUT_MS,
                 log=None):
        self.runtime = runtime
        self.name = advertised_name(locker_id_hex)
        self.idle_ms = idle_ms
        self.mtu_timeout_ms = mtu_timeout_ms
        self._log = log or (lambda *a: print("[ble]", *a))
        self.aioble, bt = _radio()
        self.connection = None          # the one phone being served, if any
        # counters a bench tester reads after a run
        self.connections = 0
        self.requests = 0
        self.fragment_errors = 0
        self.mtu_failures = 0
        self.idle_drops = 0
        self.lost_answers = 0
        self._setup(bt)

    def _setup(self, bt):
        ab = self.aioble
        ab.config(mtu=LOCAL_MTU)        # what we offer; the phone may agree to less
        self.service_uuid = bt.UUID(SERVICE_UUID)
        svc = ab.Service(self.service_uuid)
        # capture=True: every write is queued with its data and connection, so back-to-back
        # fragments are not overwritten before this task reads them.
        self.request = ab.BufferedCharacteristic(svc, bt.UUID(REQUEST_UUID), write=True,
                                                 write_no_response=True, capture=True,
                                                 max_len=MAX_LINK_PAYLOAD)
        self.response = ab.Characteristic(svc, bt.UUID(RESPONSE_UUID), notify=True)
        ab.register_services(svc)

    async def serve(self):
        """Advertise, serve one phone, repeat. Never returns."""
        while True:
            try:
                conn = await self.aioble.advertise(ADV_INTERVAL_US, name=self.name,
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
        reasm = fragment.Reassembler(P.MAX_REQUEST)
        mtu_task = asyncio.create_task(self._exchange_mtu(conn))
        try:
            while conn.is_connected():
                try:
                    with conn.timeout(None):        # a disconnect cancels the wait
                        who, data = await self.request.written(timeout_ms=self.idle_ms)
                except asyncio.TimeoutError:
                    self.idle_drops += 1
                    self._log("idle: dropping", conn.device)
                    break
                if who is not conn:
                    continue                        # queued by a phone that already left
                try:
                    message = reasm.feed(data)
                except fragment.FragmentError as e:
                    self.fragment_errors += 1
                    answer = locker.error_answer(session, e.status, str(e))
                else:
                    if message is None:
                        continue
                    self.requests += 1
                    answer = self.runtime.handle(session, message)
                    await self.runtime.door_started(session)
                if not await self._send(conn, answer):
                    break
        except ab.DeviceDisconnectedError:
            pass
        finally:
            mtu_task.cancel()
            reasm.reset()
            self.connection = None
            await self._hang_up(conn)

    async def _exchange_mtu(self, conn):
        """The locker starts the exchange; on failure answers go out in 20-byte fragments."""
        try:
            await conn.exchange_mtu(timeout_ms=self.mtu_timeout_ms)
        except asyncio.CancelledError:
            raise
        except Exception as e:          # timeout, stack refusal, phone gone
            self.mtu_failures += 1
            self._log("MTU exchange failed (%r): 20-byte fragments" % e)

    async def _send(self, conn, answer):
        """Notify the answer fragment by fragment; False when the phone is gone."""
        for piece in fragment.split(answer, link_payload(conn.mtu)):
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
                    if tries >= NOTIFY_TRIES:
                        self.lost_answers += 1
                        self._log("notify failed:", e)
                        return False
                    await asyncio.sleep(NOTIFY_BACKOFF_S * tries)
        return True

    async def _hang_up(self, conn):
        if not conn.is_connected():
            return
        try:
            await conn.disconnect(timeout_ms=DISCONNECT_TIMEOUT_MS)
        except Exception as e:          # link already dead: the stack times it out itself
            self._log("disconnect:", e)
