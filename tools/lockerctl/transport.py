"""Host transports: the simulator's loopback socket. BLE (bleak) plugs in the same way.

Both carry the same fragments and the same flow control (docs/protocol.md 2, core/link.py):
on connect the phone asks for a link payload size (the MTU exchange), then every fragment
travels as one write / notification (here: one length byte and the fragment); after every
link.WINDOW-th fragment of a request that is not its last, the phone waits for the locker's
1-byte credit. An answer arriving instead (the locker refused the request) ends the sending."""
import socket

from core import fragment, phone
from core import link
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
        self.credits = 0

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

    def _recv_fragment(self):
        n = self._recv_exact(1)[0]
        piece = self._recv_exact(n)
        self.fragments_received += 1
        self.bytes_received += len(piece)
        return piece

    def exchange(self, frame):
        if self.sock is None:
            self.connect()
        pieces = list(fragment.split(frame, self.link_payload))
        early = None
        for i, piece in enumerate(pieces):
            self.send_fragment(piece)
            if (i + 1) % link.WINDOW == 0 and i + 1 < len(pieces):
                got = self._recv_fragment()
                if not phone.is_credit(got):
                    early = got               # refused mid-request: this is the answer
                    break
                self.credits += 1
        reasm = fragment.Reassembler(P.MAX_RESPONSE)
        self.round_trips += 1
        while True:
            piece, early = (early, None) if early is not None else (self._recv_fragment(), None)
            if phone.is_credit(piece):
                continue                      # a credit for fragments sent by send_fragment
            message = reasm.feed(piece)
            if message is not None:
                return message
