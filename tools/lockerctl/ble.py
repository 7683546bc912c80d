"""BLE transport to a real locker over bleak: the laptop plays the phone.

Same contract as transport.SimSocketTransport: connect(), exchange(frame) -> frame, close(),
and the same fragments (fragment.py). The link payload comes from the ATT MTU the two stacks
agreed (bleak's max_write_without_response_size of the request characteristic), capped at
the locker's request buffer (ble_service.MAX_LINK_PAYLOAD); 20 bytes when no exchange
happened. We subscribe to answers BEFORE the first write: the locker notifies whether or not
anyone listens, and an answer sent before the subscription is lost.

bleak is async; this class runs its own event loop in a thread so the CLI and the bench
suite can use it like the socket transport."""
import asyncio
import threading

from core import fragment
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
        self.link_payload = None
        self.client = None
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
        self.link_payload = min(max(att, fragment.DEFAULT_LINK_PAYLOAD),
                                self.wanted_payload or _svc.MAX_LINK_PAYLOAD,
                                _svc.MAX_LINK_PAYLOAD)

    def _notified(self, _char, data):
        self._inbox.put_nowait(bytes(data))

    def _lost(self, _client):
        if self._inbox is not None:
            self._inbox.put_nowait(None)

    async def _write(self, piece):
        if self.client is None:
            raise TransportError("not connected to %s" % self.name)
        # with response: the locker's stack acknowledges each fragment (flow control)
        await self.client.write_gatt_char(_svc.REQUEST_UUID, piece, response=True)
        self.fragments_sent += 1
        self.bytes_sent += len(piece)

    async def _exchange(self, frame):
        while not self._inbox.empty():          # a stale answer must not pair with this one
            self._inbox.get_nowait()
        for piece in fragment.split(frame, self.link_payload):
            await self._write(piece)
        reasm = fragment.Reassembler(P.MAX_RESPONSE)
        self.round_trips += 1
        while True:
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
            message = reasm.feed(piece)
            if message is not None:
                return message
