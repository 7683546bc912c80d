"""Host transports: the simulator's loopback socket. BLE (bleak) plugs in the same way.

Both carry the same fragments: on connect the phone asks for a link payload size (the MTU
exchange), then every fragment travels as one write / notification (here: one length byte
and the fragment)."""
import socket

from core import fragment
from core import protocol as P


class TransportError(Exception):
    pass


class SimSocketTransport:
    def __init__(self, host="127.0.0.1", port=7420, link_payload=20, timeout=10.0):
        self.addr = (host, port)
        self.wanted_payload = link_payload
        self.timeout = timeout
        self.sock = None
        self.link_payload = None
        self.fragments_sent = 0
        self.fragments_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.round_trips = 0

    def connect(self):
        try:
            self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        except OSError as e:
            raise TransportError("cannot reach the locker at %s:%d (%s): is the simulator "
                                 "running? try `lockerctl sim start`" % (self.addr + (e,)))
        self.sock.sendall(bytes((self.wanted_payload,)))
        self.link_payload = self._recv_exact(1)[0]
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                raise TransportError("locker did not answer within %.0f s" % self.timeout)
            if not chunk:
                raise TransportError("locker closed the connection")
            buf += chunk
        return buf

    def send_fragment(self, piece):
        self.sock.sendall(bytes((len(piece),)) + piece)
        self.fragments_sent += 1
        self.bytes_sent += len(piece)

    def exchange(self, frame):
        if self.sock is None:
            self.connect()
        for piece in fragment.split(frame, self.link_payload):
            self.send_fragment(piece)
        reasm = fragment.Reassembler(P.MAX_RESPONSE)
        self.round_trips += 1
        while True:
            n = self._recv_exact(1)[0]
            piece = self._recv_exact(n)
            self.fragments_received += 1
            self.bytes_received += len(piece)
            message = reasm.feed(piece)
            if message is not None:
                return message
