"""THE fake radio: a stand-in for micropython-lib's `aioble` (and the `bluetooth.UUID` it
needs) plus the phone on the other side of the air, for CPython tests of ble_service.

It keeps aioble's API (Service, Characteristic, BufferedCharacteristic, register_services,
advertise, config, DeviceConnection.exchange_mtu/timeout/disconnect, written(capture=True))
and models aioble 0.6 over ESP32 NimBLE as measured on a real stack (docs/protocol.md 2,
/work/shared/micropython-vm.md). Sources are micropython-lib `micropython/bluetooth/aioble/
aioble/*.py` (lines as of its 2026-08 tree), MicroPython's NimBLE binding
(`extmod/nimble/modbluetooth_nimble.c`) and the Bluetooth Core Specification 5.x, Vol 3
(Part F = ATT, Part G = GATT):

* Writes reach the application ASYNCHRONOUSLY. The stack acknowledges a write (with or
  without response) inside itself, before Python reads it (NimBLE answers the ATT Write
  Response from its host task; Part F 3.4.5.2), and the IRQ appends (connection, value,
  characteristic) to aioble's capture queue: a deque of _WRITE_CAPTURE_QUEUE_LIMIT = 10 that
  drops the OLDEST when full (server.py:42, :110 `deque((), _WRITE_CAPTURE_QUEUE_LIMIT)`,
  :172-189 `_remote_write`). A capture task pops one entry at a time, hands it to
  `written()` and waits until it is consumed (server.py:119-137 `_run_capture_task`), so
  10 queued + 1 handed over is the most a slow reader can hold. `radio.reader_delay_s`
  makes the locker-side reader slow (the application busy between reads: HMAC, flash
  writes); `radio.air_s` is the air time of one ATT PDU (a connection event).
* A write longer than ATT_MTU-3 is a long write (Prepare Write + Execute Write, Part F
  3.4.6, Part G 4.9.4), sent only WITH response: the phone's stack splits it, NimBLE
  reassembles it and delivers it whole, up to the characteristic's buffer
  (`BufferedCharacteristic(max_len=)` -> `gatts_set_buffer`, server.py:293-300); beyond
  the buffer the write is refused with ATT error 0x11 Insufficient Resources (Part F
  3.4.1.1; measured: 300 bytes into 244). A write without response can never exceed
  ATT_MTU-3 (Part F 3.4.5.3): the phone's stack refuses it (ValueError here).
* A single write that fits ATT_MTU-3 but not the buffer is silently truncated to the
  buffer (MicroPython's NimBLE binding copies at most the buffer size; default 20 bytes).
* Notifications carry at most ATT_MTU-3 bytes (Part F 3.4.7.1): NimBLE truncates.
* MTU exchange: if the phone started it (Android, iOS and BlueZ all do, `Phone(starts_mtu=
  True)` or `initiate_mtu()`), the locker's own `exchange_mtu()` fails with
  OSError(EALREADY) although `connection.mtu` is already set by _IRQ_MTU_EXCHANGED
  (device.py:21-26 sets it whoever started; device.py:282 `ble.gattc_exchange_mtu` raises;
  NimBLE returns BLE_HS_EALREADY, Part G 4.3.1: once per connection). It can also time out
  (phone never answers, `mtu_reply="silent"`) or fail in the stack (`mtu_reply="refuse"`:
  OSError(ENOTCONN)).
* Requests are lost at disconnect: entries a vanished phone left in the capture queue stay
  there with a dead connection (server.py:177 looks the connection up at IRQ time), a
  `written()` under `connection.timeout()` is cancelled by the disconnect (device.py:35-88
  DeviceTimeout), and nothing is evaluated for a phone that is gone.
* notifications sent before the phone subscribed are dropped by the phone;
  notify() raises OSError(ENOMEM) while the stack's buffers are full (inject with
  `radio.notify_busy = n`) and TypeError once the connection handle is gone;
* a phone can vanish: reported (disconnect IRQ) or silent (link dead, no IRQ until the
  locker itself disconnects, which then takes the supervision timeout).

Install with `install()`; it puts this module in sys.modules as `aioble` and a tiny
`bluetooth` module next to it. Everything runs on one asyncio loop.
"""
import asyncio
import errno
import sys
import types
from collections import deque

ATT_DEFAULT_MTU = 23
CAPTURE_QUEUE_LIMIT = 10          # aioble server.py:42 _WRITE_CAPTURE_QUEUE_LIMIT
ATT_INSUFFICIENT_RESOURCES = 0x11   # Core Spec Vol 3 Part F 3.4.1.1
ADV_MAX = 31


# ---- bluetooth module stand-in ----------------------------------------------------------

class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            self._b = value.to_bytes(2, "little")
        else:
            self._b = bytes.fromhex(value.replace("-", ""))[::-1]
        self.text = value

    def __bytes__(self):
        return self._b

    def __eq__(self, other):
        return isinstance(other, UUID) and self._b == other._b

    def __hash__(self):
        return hash(self._b)

    def __repr__(self):
        return "UUID(%r)" % (self.text,)


bluetooth = types.ModuleType("bluetooth")
bluetooth.UUID = UUID


# ---- errors (same names as aioble) --------------------------------------------------------

class DeviceDisconnectedError(Exception):
    pass


class GattError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self._status = status


# ---- the stack + air ----------------------------------------------------------------------

class Radio:
    """NimBLE's state on the locker side and the air between it and the phones."""

    def __init__(self):
        self.local_mtu = ATT_DEFAULT_MTU
        self.active = False
        self.characteristics = {}          # value handle -> characteristic
        self.capture = deque((), CAPTURE_QUEUE_LIMIT)
        self.capture_dropped = 0
        self.capture_peak = 0              # most writes held at once (queue + handed over)
        self.capture_event = asyncio.Event()      # aioble's _capture_write_event
        self.consumed_event = asyncio.Event()     # aioble's _capture_consumed_event
        self.capture_task = None
        self.handed = None                 # characteristic holding a handed-over write
        self.reader_delay_s = 0.0          # the locker's application between two reads
        self.air_s = 0.0                   # one ATT PDU (connection event)
        self.advertising = None            # dict while advertising
        self.adv_event = asyncio.Event()
        self.pending_connection = None
        self.connected = {}                # conn handle -> DeviceConnection
        self.max_simultaneous = 0
        self.next_handle = 1
        self.notify_busy = 0               # how many notify() calls fail with ENOMEM
        self.notify_attempts = 0
        self.disconnect_reports = True     # False: the stack never reports a dead link
        self.log = []

    def start_capture(self):
        """aioble server.py:106-115 _init_capture: one task for all capture characteristics."""
        if self.capture_task is None:
            self.capture_task = asyncio.ensure_future(self._run_capture())

    async def _run_capture(self):
        """server.py:119-137: hand over one write at a time, wait until it is consumed."""
        q = self.capture
        while True:
            if len(q):
                conn, data, char = q.popleft()
                char._write_data = (conn, data)
                self.handed = char
                char._write_event.set()
                await self.consumed_event.wait()
                self.consumed_event.clear()
                self.handed = None
            if not len(q):
                await self.capture_event.wait()
                self.capture_event.clear()

    def irq_write(self, conn, char):
        """_IRQ_GATTS_WRITE -> server.py:172-189 _remote_write (capture: append, deque drops
        the oldest when full)."""
        data = char.read()
        if len(self.capture) == CAPTURE_QUEUE_LIMIT:
            self.capture_dropped += 1
        self.capture.append((conn, data, char))
        self.capture_peak = max(self.capture_peak,
                                len(self.capture) + (self.handed is not None))
        self.capture_event.set()

    # the stack's IRQ side
    def irq_disconnect(self, conn):
        if conn._conn_handle is None:
            return
        self.connected.pop(conn._conn_handle, None)
        conn._conn_handle = None
        conn.device._connection = None
        for t in list(conn._timeouts):
            t.disconnected()
        conn._gone.set()
        if conn.phone is not None and conn.phone.link is conn:
            conn.phone.link = None


RADIO = None


def install():
    """Fresh radio; this module becomes `aioble`, plus a `bluetooth` module."""
    global RADIO
    RADIO = Radio()
    sys.modules["aioble"] = sys.modules[__name__]
    sys.modules["bluetooth"] = bluetooth
    return RADIO


def config(*args, **kwargs):
    RADIO.active = True
    if "mtu" in kwargs:
        mtu = kwargs["mtu"]
        if not 23 <= mtu <= 517:
            raise ValueError("mtu out of range")
        RADIO.local_mtu = mtu
        return None
    if args == ("mtu",):
        return RADIO.local_mtu
    raise ValueError("unknown config")


# ---- GATT server -----------------------------------------------------------------------

class Service:
    def __init__(self, uuid):
        self.uuid = uuid
        self.characteristics = []


class Characteristic:
    def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                 notify=False, indicate=False, initial=None, capture=False):
        service.characteristics.append(self)
        self.uuid = uuid
        self.can_write = write or write_no_response
        self.can_notify = notify
        self.capture = capture and self.can_write
        self.max_len = 20                  # the stack's default attribute buffer
        self._value = initial or b""
        self._value_handle = None
        self._last_writer = None
        self._write_data = None
        self._write_event = asyncio.Event() if self.can_write else None

    def _register(self, handle):
        self._value_handle = handle
        RADIO.characteristics[handle] = self

    def read(self):
        return bytes(self._value)

    def write(self, data, send_update=False):
        self._value = bytes(data)[:self.max_len]

    def _remote_write(self, conn, data):
        self._value = bytes(data)[:self.max_len]      # silent truncation, like the stack
        if self.capture:
            RADIO.irq_write(conn, self)
        else:
            self._last_writer = conn
            self._write_event.set()

    async def written(self, timeout_ms=None):
        """server.py:142-167; reader_delay_s: the application was busy before this call."""
        if not self.can_write:
            return None
        if RADIO.reader_delay_s:
            await asyncio.sleep(RADIO.reader_delay_s)
        if self.capture:
            RADIO.start_capture()
        with _Timeout(None, timeout_ms):
            await self._write_event.wait()
        self._write_event.clear()
        if self.capture:
            data, self._write_data = self._write_data, None
            RADIO.consumed_event.set()
            return data
        return self._last_writer

    def notify(self, connection, data=None):
        if not self.can_notify:
            raise ValueError("Not supported")
        if connection._conn_handle is None:
            # aioble passes conn._conn_handle straight to ble.gatts_notify
            raise TypeError("can't convert NoneType to int")
        RADIO.notify_attempts += 1
        if RADIO.notify_busy > 0:
            RADIO.notify_busy -= 1
            raise OSError(errno.ENOMEM, "ENOMEM")
        payload = bytes(self._value if data is None else data)
        payload = payload[:(connection.mtu or ATT_DEFAULT_MTU) - 3]   # NimBLE truncates
        phone = connection.phone
        if phone is not None and phone.link is connection:
            phone._notified(self, payload)


class BufferedCharacteristic(Characteristic):
    def __init__(self, *args, max_len=20, append=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_len = max_len


def register_services(*services):
    RADIO.active = True
    RADIO.characteristics.clear()
    handle = 1
    for s in services:
        for c in s.characteristics:
            c._register(handle)
            handle += 1


# ---- timeouts and connections -------------------------------------------------------------

class _Timeout:
    """aioble's DeviceTimeout: cancels the task on timeout or disconnection."""

    def __init__(self, connection, timeout_ms):
        self._connection = connection
        self._timeout_ms = timeout_ms
        self._task = asyncio.current_task()
        self._handle = None
        self._fired = None

    def _cancel(self, why):
        if self._fired is None:
            self._fired = why
            self._task.cancel()

    def disconnected(self):
        self._cancel("disconnect")

    def __enter__(self):
        if self._connection is not None:
            self._connection._timeouts.append(self)
        if self._timeout_ms:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self._timeout_ms / 1000, self._cancel, "timeout")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._handle:
            self._handle.cancel()
        if self._connection is not None:
            self._connection._timeouts.remove(self)
        if exc_type is asyncio.CancelledError and self._fired:
            self._task.uncancel()
            if self._fired == "timeout":
                raise asyncio.TimeoutError
            raise DeviceDisconnectedError
        return False


class Device:
    def __init__(self, addr):
        self.addr = addr
        self._connection = None

    def __repr__(self):
        return "Device(%s)" % self.addr


class DeviceConnection:
    def __init__(self, device, handle, phone):
        self.device = device
        device._connection = self
        self._conn_handle = handle
        self.phone = phone
        self.mtu = None
        self.mtu_by_phone = False          # the phone started the exchange
        self._timeouts = []
        self._gone = asyncio.Event()
        self._mtu_event = asyncio.Event()

    def is_connected(self):
        return self._conn_handle is not None

    def timeout(self, timeout_ms):
        return _Timeout(self, timeout_ms)

    async def exchange_mtu(self, mtu=None, timeout_ms=1000):
        if not self.is_connected():
            raise ValueError("Not connected")
        if mtu:
            config(mtu=mtu)
        RADIO.log.append("exchange_mtu")
        if self.mtu_by_phone:                  # device.py:282, NimBLE BLE_HS_EALREADY
            raise OSError(errno.EALREADY, "EALREADY")
        self.phone._mtu_request(self)          # may raise OSError (stack refused)
        with self.timeout(timeout_ms):
            await self._mtu_event.wait()
        return self.mtu

    def _mtu_exchanged(self, mtu):
        self.mtu = mtu
        self._mtu_event.set()

    async def disconnect(self, timeout_ms=2000):
        await self.disconnected(timeout_ms, disconnect=True)

    async def disconnected(self, timeout_ms=None, disconnect=False):
        if not self.is_connected():
            return
        if disconnect:
            RADIO.log.append("gap_disconnect")
            if RADIO.disconnect_reports:
                asyncio.get_running_loop().call_soon(RADIO.irq_disconnect, self)
        with _Timeout(None, timeout_ms):
            await self._gone.wait()


async def advertise(interval_us, adv_data=None, resp_data=None, connectable=True,
                    limited_disc=False, br_edr=False, name=None, services=None, appearance=0,
                    manufacturer=None, timeout_ms=None):
    RADIO.active = True
    adv, resp = _pack_advert(name, services or [])
    RADIO.advertising = {"name": name, "services": list(services or []), "adv": adv,
                         "resp": resp, "interval_us": interval_us}
    RADIO.log.append("advertise")
    RADIO.adv_event.set()
    try:
        with _Timeout(None, timeout_ms):
            while RADIO.pending_connection is None:
                RADIO.adv_event.clear()
                await RADIO.adv_event.wait()
        conn, RADIO.pending_connection = RADIO.pending_connection, None
        return conn
    finally:
        RADIO.advertising = None


def _pack_advert(name, services):
    """Advertising data as the stack would send it; ValueError when it does not fit."""
    fields = [bytes((2, 0x01, 0x06))]
    for u in services:
        b = bytes(u)
        fields.append(bytes((len(b) + 1, 0x07 if len(b) == 16 else 0x03)) + b)
    if name:
        n = name.encode()
        fields.append(bytes((len(n) + 1, 0x09)) + n)
    adv, resp = b"", b""
    for f in fields:
        if len(adv) + len(f) < ADV_MAX:
            adv += f
        elif len(resp) + len(f) < ADV_MAX:
            resp += f
        else:
            raise ValueError("Advertising payload too long")
    return adv, resp


# ---- the phone ------------------------------------------------------------------------------

class Phone:
    """A central on the other side of the air (what bleak / a phone app does).

    mtu: what the phone offers in the exchange; starts_mtu: the phone exchanges the MTU
    itself right after connecting (Android, iOS, BlueZ); mtu_reply (to the locker's own
    exchange): "ok", "silent" (never answers: the locker's exchange times out) or "refuse"
    (the stack fails it)."""

    def __init__(self, mtu=247, mtu_reply="ok", addr="aa:bb:cc:00:00:01", starts_mtu=False):
        self.mtu = mtu
        self.mtu_reply = mtu_reply
        self.starts_mtu = starts_mtu
        self.addr = addr
        self.link = None              # the locker-side DeviceConnection while connected
        self.subscribed = False
        self.received = asyncio.Queue()
        self.dropped_notifications = 0
        self.pdus = 0                 # ATT PDUs this phone sent for writes

    @staticmethod
    def scan():
        ad = RADIO.advertising
        return None if ad is None else ad["name"]

    async def connect(self, name):
        await asyncio.sleep(0)
        ad = RADIO.advertising
        if ad is None or ad["name"] != name:
            raise ConnectionError("no locker advertising as %r" % name)
        handle = RADIO.next_handle
        RADIO.next_handle += 1
        conn = DeviceConnection(Device(self.addr), handle, self)
        RADIO.connected[handle] = conn
        RADIO.max_simultaneous = max(RADIO.max_simultaneous, len(RADIO.connected))
        RADIO.advertising = None                 # NimBLE stops advertising on connect
        self.link = conn
        self.subscribed = False
        if self.starts_mtu:
            self.initiate_mtu()                  # done before the locker's task runs
        RADIO.pending_connection = conn
        RADIO.adv_event.set()
        return conn

    def subscribe(self):
        self.subscribed = True

    def att_payload(self):
        return (self.link.mtu or ATT_DEFAULT_MTU) - 3

    async def write(self, uuid, data, response=True):
        """A GATT write of one fragment. response=True: Write Request, or a long write when
        longer than ATT_MTU-3; the stack acknowledges it before the locker's Python reads it.
        Raises GattError(0x11) beyond the characteristic's buffer (long write), ValueError
        for a write without response longer than ATT_MTU-3, ConnectionError when gone."""
        if self.link is None:
            raise ConnectionError("not connected")
        char = None
        for c in RADIO.characteristics.values():
            if c.uuid == uuid:
                char = c
        if char is None:
            raise KeyError("no characteristic %r" % uuid)
        att = self.att_payload()
        if len(data) <= att:
            pdus = 1
        elif not response:
            raise ValueError("write without response of %d bytes exceeds ATT payload %d"
                             % (len(data), att))
        else:                                    # Prepare Write x n (MTU-5 each) + Execute
            pdus = -(-len(data) // (att - 2)) + 1
        self.pdus += pdus
        await asyncio.sleep(RADIO.air_s * pdus)
        if self.link is None:
            raise ConnectionError("disconnected during the write")
        if len(data) > att and len(data) > char.max_len:
            raise GattError(ATT_INSUFFICIENT_RESOURCES)
        char._remote_write(self.link, data)

    def _mtu_request(self, conn):
        if self.mtu_reply == "refuse":
            raise OSError(errno.ENOTCONN, "ENOTCONN")
        if self.mtu_reply == "ok":
            agreed = min(self.mtu, RADIO.local_mtu)
            asyncio.get_running_loop().call_soon(conn._mtu_exchanged, agreed)

    def initiate_mtu(self):
        """Phone-started exchange (Android/iOS/BlueZ do this themselves)."""
        self.link.mtu_by_phone = True
        self.link._mtu_exchanged(min(self.mtu, RADIO.local_mtu))

    def _notified(self, char, payload):
        if not self.subscribed:
            self.dropped_notifications += 1
            return
        self.received.put_nowait(payload)

    async def disconnect(self):
        if self.link is not None:
            RADIO.irq_disconnect(self.link)

    def vanish(self, reported=True):
        """Walk out of range. reported=False: the stack never notices on its own."""
        conn, self.link = self.link, None
        if conn is not None and reported:
            asyncio.get_running_loop().call_soon(RADIO.irq_disconnect, conn)
