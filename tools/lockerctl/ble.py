"""BLE transport to a real locker over bleak: the laptop plays the phone.

Same contract as transport.SimSocketTransport: connect(), exchange(frame) -> frame, close(),
and the same fragments (fragment.py) and flow control (docs/protocol.md 2, core/link.py).

Request fragments are the locker's request buffer (ble_service.MAX_LINK_PAYLOAD, 244 bytes)
whatever the ATT MTU, written WITH response: below MTU 247 the host stack sends each as a long
(prepared) write and the locker's NimBLE delivers it whole, so a request is at most 2
fragments. A write's response is NOT flow control: NimBLE acknowledges a write inside the
stack before the locker's Python reads it, and aioble queues at most 10 writes, dropping the
oldest. Flow control is the locker's credit: after every link.WINDOW-th fragment that is not
the last, we wait for its 1-byte credit notification (with `link_payload=20` a 256-byte
request waits once). Answers arrive in notifications of up to ATT_MTU-3 bytes (bleak's
max_write_without_response_size tells the agreed MTU). We subscribe to answers BEFORE the
first write: the locker notifies whether or not anyone listens, and an answer sent before the
subscription is lost.

bleak is async; this class runs its own event loop in a thread so the CLI and the bench
suite can use it like the socket transport."""
import asyncio
import threading

from core import fragment, phone
from core import link
from core import protocol as P
from radio import ble_service as _svc  # firmware module (on the path via .fw): UUIDs, name, sizes

from .transport import TransportError


class BleTransport:
    def __init__(self, locker_id, timeout=10.0, scan_timeout=10.0, link_payload=None):
        """locker_id: 16 hex digits (or the advertised name itself, "LKR-...")."""
        lid = locker_id.upper()
        self.name = lid if lid.startswith(_svc.NAME_PREFIX) else _svc.advertised_name(lid)
        self.timeout = timeout
        self.scan_timeout = scan_timeout
        self.wanted_payload = link_payload
        self.link_payload = None        # request fragment size
        self.att_payload = None         # ATT_MTU - 3 the stacks agreed (answer fragment size)
        self.client = None
        self.credits = 0
        self.fragments_sent = 0
        self.fragments_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.round_trips = 0
        self._loop = None
        self._thread = None
        self._inbox = None

    # ---- sync facade over a private loop ------------------------------------------------
    def _run(self, coro, timeout):
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                            name="lockerctl-ble")
            self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise TransportError("locker %s did not answer within %.0f s"
                                 % (self.name, timeout))

    def connect(self):
        self._run(self._connect(), self.scan_timeout + self.timeout + 5)
        return self

    def exchange(self, frame):
        if self.client is None:
            self.connect()
        return self._run(self._exchange(frame), self.timeout + 1)

    def send_fragment(self, piece):
        """One raw fragment (bench tests of half-sent requests)."""
        self._run(self._write(piece), self.timeout)

    def close(self):
        if self._loop is None:
            return
        if self.client is not None:
            try:
                self._run(self.client.disconnect(), self.timeout)
            except Exception:
                pass
            self.client = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.timeout)
        self._loop = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    # ---- bleak ----------------------------------------------------------------------------
    async def _connect(self):
        try:
            from bleak import BleakClient, BleakScanner
        except ImportError as e:
            raise TransportError("BLE needs bleak: pip install -e '.[ble]' (%s)" % e)
        device = await BleakScanner.find_device_by_name(self.name, timeout=self.scan_timeout)
        if device is None:
            raise TransportError("no locker advertising as %s within %.0f s: is it powered, "
                                 "in range, and not serving another phone?"
                                 % (self.name, self.scan_timeout))
        self._inbox = asyncio.Queue()
        client = BleakClient(device, disconnected_callback=self._lost, timeout=self.timeout)
        await client.connect()
        try:
            await client.start_notify(_svc.RESPONSE_UUID, self._notified)
            char = client.services.get_characteristic(_svc.REQUEST_UUID)
            if char is None:
                raise TransportError("%s has no locker request characteristic" % self.name)
            att = char.max_write_without_response_size
        except Exception:
            await client.disconnect()
            raise
        self.client = client
        self.att_payload = att
        self.link_payload = max(fragment.DEFAULT_LINK_PAYLOAD,
                                min(self.wanted_payload or _svc.MAX_LINK_PAYLOAD,
                                    _svc.MAX_LINK_PAYLOAD))

    def _notified(self, _char, data):
        self._inbox.put_nowait(bytes(data))

    def _lost(self, _client):
        if self._inbox is not None:
            self._inbox.put_nowait(None)

    async def _write(self, piece):
        if self.client is None:
            raise TransportError("not connected to %s" % self.name)
        # with response: a long write when the fragment exceeds ATT_MTU-3, and a lost link
        # shows up here; it is NOT flow control (the credits are, see the module docstring)
        await self.client.write_gatt_char(_svc.REQUEST_UUID, piece, response=True)
        self.fragments_sent += 1
        self.bytes_sent += len(piece)

    async def _next_piece(self):
        try:
            piece = await asyncio.wait_for(self._inbox.get(), self.timeout)
        except asyncio.TimeoutError:
            raise TransportError("locker %s did not answer within %.0f s"
                                 % (self.name, self.timeout))
        if piece is None:
            self.client = None
            raise TransportError("locker %s closed the connection" % self.name)
        self.fragments_received += 1
        self.bytes_received += len(piece)
        return piece

    async def _exchange(self, frame):
        while not self._inbox.empty():          # a stale answer must not pair with this one
            self._inbox.get_nowait()
        pieces = list(fragment.split(frame, self.link_payload))
        early = None
        for i, piece in enumerate(pieces):
            await self._write(piece)
            if (i + 1) % link.WINDOW == 0 and i + 1 < len(pieces):
                got = await self._next_piece()
                if not phone.is_credit(got):
                    early = got                 # refused mid-request: this is the answer
                    break
                self.credits += 1
        reasm = fragment.Reassembler(P.MAX_RESPONSE)
        self.round_trips += 1
        while True:
            piece, early = (early, None) if early is not None else (await self._next_piece(),
                                                                    None)
            if phone.is_credit(piece):
                continue                        # for fragments sent by send_fragment
            message = reasm.feed(piece)
            if message is not None:
                return message
