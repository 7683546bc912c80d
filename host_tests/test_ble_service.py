"""ble_service over the fake radio (host_tests/fakes/fake_aioble.py): the locker's GATT service
against the BLE failure modes real lockers meet (truncated writes, failed MTU exchange,
phones that vanish, notifications before subscription, a busy stack)."""
import asyncio
import os
import sys
import threading

import pytest
from core import fragment
from core.phone import credit_points, is_credit, parse_response, sign
from core import link as core_link
from core import protocol as P
from fakes import fake_aioble
from lockerctl.client import LockerClient

LINK_TIMEOUT_S = 5      # a safety net so a broken service fails the test instead of hanging


class Runtime:
    """The part of main.Runtime the transport uses."""

    def __init__(self, locker):
        self.locker = locker

    def handle(self, session, frame):
        return self.locker.handle(session, frame)

    async def door_started(self, session):
        """main.Runtime holds the answer until the door's pulse starts; the bench clock does
        not run on its own here, so nothing waits (test_door_answers.py checks the wait)."""


class Air:
    """The fake radio and the locker's BleService on a loop in a background thread, so the
    synchronous LockerClient can drive a phone across it."""

    def __init__(self, bench, **service_kw):
        self.bench = bench
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.radio = self.call(self._install())
        from radio import ble_service
        self.ble_service = ble_service
        kw = dict(idle_ms=200, mtu_timeout_ms=50, log=lambda *a: None,
                  clock=(self.ticks_ms, lambda a, b: a - b))
        kw.update(service_kw)
        self.service = self.call(self._start(ble_service, kw))
        self.req_uuid = fake_aioble.UUID(ble_service.REQUEST_UUID)

    def ticks_ms(self):
        return int(self.loop.time() * 1000)

    async def _install(self):
        return fake_aioble.install()

    async def _start(self, ble_service, kw):
        svc = ble_service.BleService(Runtime(self.bench.locker), self.bench.cfg["locker_id"],
                                     **kw)
        self.task = asyncio.ensure_future(svc.serve())
        await asyncio.sleep(0)
        return svc

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LINK_TIMEOUT_S * 2)

    def settle(self, predicate):
        """Run the loop until predicate() holds (the fake has no real time to wait for)."""
        async def wait():
            while not predicate():
                await asyncio.sleep(0.005)
        self.call(asyncio.wait_for(wait(), LINK_TIMEOUT_S))

    def close(self):
        async def stop():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()
        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LINK_TIMEOUT_S)
        sys.modules.pop("aioble", None)
        sys.modules.pop("bluetooth", None)

    # ---- phone side --------------------------------------------------------------------
    def phone(self, subscribe=True, **kw):
        async def connect():
            p = fake_aioble.Phone(**kw)
            await p.connect(self.service.name)
            if subscribe:
                p.subscribe()
            return p
        self.settle(lambda: self.radio.advertising is not None)
        return self.call(connect())

    async def _exchange(self, phone, frame, link):
        """The phone side of docs/protocol.md 2: fragments of `link` bytes (default: the
        244-byte request buffer, long writes below MTU 247), a credit awaited after every
        WINDOW-th fragment that is not the last; an answer arriving instead ends the sending."""
        pieces = list(fragment.split(frame, link or self.ble_service.MAX_LINK_PAYLOAD))
        first = None
        for i, piece in enumerate(pieces):
            await phone.write(self.req_uuid, piece)
            if (i + 1) % core_link.WINDOW == 0 and i + 1 < len(pieces):
                got = await asyncio.wait_for(phone.received.get(), LINK_TIMEOUT_S)
                phone.credits += 1
                if not is_credit(got):
                    first = got                  # the locker answered early: an error
                    break
        return await self._receive(phone, first)

    async def _receive(self, phone, first=None):
        reasm = fragment.Reassembler(P.MAX_RESPONSE)
        while True:
            if first is not None:
                piece, first = first, None
            else:
                piece = await asyncio.wait_for(phone.received.get(), LINK_TIMEOUT_S)
            assert not is_credit(piece), "a credit where an answer was due"
            phone.last_sizes.append(len(piece))
            message = reasm.feed(piece)
            if message is not None:
                return message

    def transport(self, phone, link=None):
        air = self
        phone.last_sizes = []
        phone.credits = 0

        class PhoneTransport:
            def exchange(self, frame):
                return air.call(air._exchange(phone, frame, link))
        return PhoneTransport()

    def send(self, phone, pieces):
        async def go():
            for piece in pieces:
                await phone.write(self.req_uuid, piece)
        self.call(go())


@pytest.fixture
def air(bench):
    a = Air(bench)
    yield a
    a.close()


def test_advertises_the_locker_by_name_with_the_service(air):
    air.settle(lambda: air.radio.advertising is not None)
    ad = air.radio.advertising
    assert ad["name"] == "LKR-" + air.bench.cfg["locker_id"].upper()
    assert bytes(fake_aioble.UUID(air.ble_service.SERVICE_UUID)) in ad["adv"] + ad["resp"]
    assert ad["name"].encode() in ad["resp"]      # name overflows into the scan response


def test_deposit_and_pickup_with_a_large_mtu(air, bench):
    phone = air.phone(mtu=247)
    client = LockerClient(air.transport(phone))
    dep = client.deposit(bench.courier(), size=1)
    assert client.pickup(dep.code)["slot"] == dep.slot
    assert air.radio.local_mtu == 247
    assert phone.link.mtu == 247
    assert max(phone.last_sizes) > 20             # answers used the agreed MTU
    assert max(phone.last_sizes) <= 244
    assert air.radio.max_simultaneous == 1


@pytest.mark.parametrize("reply", ["silent", "refuse"])
def test_failed_mtu_exchange_falls_back_to_20_byte_fragments(air, bench, reply):
    phone = air.phone(mtu=247, mtu_reply=reply)
    air.settle(lambda: air.service.mtu_failures == 1)
    client = LockerClient(air.transport(phone, link=20))
    dep = client.deposit(bench.courier(), size=1)
    assert client.pickup(dep.machine_code)["slot"] == dep.slot
    assert phone.last_sizes and max(phone.last_sizes) == 20


def test_mtu_the_phone_negotiated_itself_is_used(air, bench):
    phone = air.phone(mtu=185)
    air.call(asyncio.sleep(0))
    phone.initiate_mtu()                 # iOS-like: the phone exchanged after the locker
    client = LockerClient(air.transport(phone))
    client.deposit(bench.courier(), size=1)
    client.audit_page(bench.technician())          # a long answer: several fragments
    assert max(phone.last_sizes) == 182


@pytest.mark.parametrize("phone_mtu", [23, 185, 247])
def test_mtu_exchange_started_by_the_phone_is_not_a_failure(bench, phone_mtu):
    # Android, iOS and BlueZ start the exchange themselves; the locker's own exchange_mtu
    # then fails with EALREADY although the MTU is agreed (issue 13.3).
    logged = []
    a = Air(bench, log=lambda *m: logged.append(" ".join(str(x) for x in m)))
    try:
        phone = a.phone(mtu=phone_mtu, starts_mtu=True)
        a.settle(lambda: a.service.mtu_by_phone == 1)
        client = LockerClient(a.transport(phone))
        client.deposit(bench.courier(), size=1)
        client.audit_page(bench.technician())
        assert "exchange_mtu" in a.radio.log           # the locker did try
        assert a.service.mtu_failures == 0
        assert not [m for m in logged if "MTU" in m]
        assert max(phone.last_sizes) == min(phone_mtu - 3, 244)
    finally:
        a.close()


def test_request_buffer_holds_a_full_att_payload(air, bench):
    # A whole deposit request in ONE 244-byte write must arrive intact: with the stack's
    # default 20-byte buffer it would be cut silently (see the next test).
    phone = air.phone(mtu=247)
    client = LockerClient(air.transport(phone, link=244))
    dep = client.deposit(bench.courier(), size=1)
    assert dep.slot >= 1
    req = [c for c in air.radio.characteristics.values() if c.can_write][0]
    assert req.max_len >= air.radio.local_mtu - 3


def test_the_fake_truncates_writes_to_the_buffer_like_the_stack(bench):
    # Guard for the test above: the fake really cuts long writes to a default buffer.
    async def go():
        radio = fake_aioble.install()
        svc = fake_aioble.Service(fake_aioble.UUID(0x1234))
        ch = fake_aioble.Characteristic(svc, fake_aioble.UUID(0x1235), write=True,
                                        capture=True)
        fake_aioble.register_services(svc)
        fake_aioble.config(mtu=247)
        radio.advertising = {"name": "x"}
        phone = fake_aioble.Phone()
        conn = await phone.connect("x")
        conn.mtu = 247
        await phone.write(ch.uuid, bytes(100))
        return await ch.written(timeout_ms=100)
    try:
        _, data = asyncio.run(go())
    finally:
        sys.modules.pop("aioble", None)
        sys.modules.pop("bluetooth", None)
    assert len(data) == 20


def test_notifications_before_subscription_are_lost_then_a_retry_works(air):
    phone = air.phone(subscribe=False)
    hello = P.request(P.HELLO)
    air.send(phone, list(fragment.split(hello, 20)))
    air.settle(lambda: phone.dropped_notifications > 0)
    phone.subscribe()
    answer = air.transport(phone).exchange(hello)
    assert parse_response(answer)[1] == P.OK


def test_phone_vanishing_mid_request_leaves_no_trace(air, bench):
    cred = bench.courier()
    phone = air.phone()
    client = LockerClient(air.transport(phone, link=20))
    client.hello()
    frame = sign(P.request(P.DEPOSIT, cred.block + os.urandom(8) + b"\x01"), cred.key,
                   client.challenge)
    pieces = list(fragment.split(frame, 20))
    air.send(phone, pieces[:-1])                 # all but the LAST fragment
    air.call(_vanish(phone, reported=True))
    air.settle(lambda: air.service.connection is None)
    assert not any(bench.locker.slots.state)     # nothing allocated
    # the next phone is served from a clean slate
    phone2 = air.phone()
    dep = LockerClient(air.transport(phone2)).deposit(cred, size=1)
    assert list(bench.locker.slots.state).count(1) == 1
    assert bench.locker.slots.get(dep.slot).state == 1


async def _vanish(phone, reported):
    phone.vanish(reported)


def test_answer_lost_to_a_silent_vanish_then_retry_gets_the_same_slot(air, bench):
    cred = bench.courier()
    phone = air.phone()
    client = LockerClient(air.transport(phone))
    client.hello()
    req_id = os.urandom(8)
    frame = sign(P.request(P.DEPOSIT, cred.block + req_id + b"\x01"), cred.key,
                   client.challenge)
    pieces = list(fragment.split(frame, 244))

    async def send_and_vanish():
        for piece in pieces:
            await phone.write(air.req_uuid, piece)
        phone.vanish(reported=False)             # out of range before the answer
    air.call(send_and_vanish())
    air.settle(lambda: air.service.idle_drops == 1 and air.radio.advertising is not None)
    assert "gap_disconnect" in air.radio.log
    phone2 = air.phone()
    dep = LockerClient(air.transport(phone2)).deposit(cred, size=1, request_id=req_id)
    assert list(bench.locker.slots.state).count(1) == 1
    assert dep.slot == [i + 1 for i, s in enumerate(bench.locker.slots.state) if s][0]


def test_silent_phone_is_dropped_and_advertising_resumes(air):
    phone = air.phone()
    air.settle(lambda: air.service.idle_drops == 1)
    air.settle(lambda: air.radio.advertising is not None)
    assert phone.link is None


def test_dead_link_the_stack_never_reports_does_not_wedge_the_locker(air, bench):
    air.radio.disconnect_reports = False
    phone = air.phone()
    air.call(_vanish(phone, reported=False))
    air.settle(lambda: air.service.idle_drops == 1 and air.radio.advertising is not None)
    phone2 = air.phone()
    assert LockerClient(air.transport(phone2)).hello().slot_count == len(bench.locker.slots)


def test_busy_stack_notifications_are_retried(air):
    phone = air.phone()
    air.radio.notify_busy = 2
    before = air.radio.notify_attempts
    answer = air.transport(phone).exchange(P.request(P.HELLO))
    assert parse_response(answer)[1] == P.OK
    assert air.radio.notify_attempts - before > len(phone.last_sizes)


def test_stack_that_stays_busy_drops_the_connection(air):
    phone = air.phone()
    air.radio.notify_busy = 10 ** 6
    air.send(phone, list(fragment.split(P.request(P.HELLO), 20)))
    air.settle(lambda: air.service.lost_answers == 1 and air.service.connection is None)
    air.radio.notify_busy = 0
    phone2 = air.phone()
    assert parse_response(air.transport(phone2).exchange(P.request(P.HELLO)))[1] == P.OK


def test_one_connection_at_a_time(air):
    air.phone()

    async def second():
        with pytest.raises(ConnectionError):
            await fake_aioble.Phone(addr="aa:bb:cc:00:00:02").connect(air.service.name)
    air.call(second())
    assert air.radio.max_simultaneous == 1


def test_write_queued_by_a_departed_phone_is_not_answered_to_the_next(air):
    phone = air.phone()

    async def write_and_leave():
        await phone.write(air.req_uuid, next(fragment.split(P.request(P.HELLO), 20)))
        fake_aioble.RADIO.irq_disconnect(phone.link)   # gone before the locker read it
    air.call(write_and_leave())
    phone2 = air.phone()
    assert parse_response(air.transport(phone2).exchange(P.request(P.HELLO)))[1] == P.OK
    air.call(asyncio.sleep(0.05))
    assert phone2.received.empty()


def test_fragment_out_of_sequence_gets_a_clear_error(air):
    phone = air.phone()
    bad = bytes((0x03,)) + b"junk"                       # no FIRST bit, sequence 3
    air.send(phone, [bad])
    phone.last_sizes = []
    answer = air.call(air._receive(phone))
    assert parse_response(answer)[1] == P.E_LENGTH
    assert air.service.fragment_errors == 1


def test_without_aioble_construction_says_what_to_install(bench):
    from radio import ble_service
    saved = {k: sys.modules.pop(k) for k in ("aioble", "bluetooth") if k in sys.modules}
    sys.modules["aioble"] = None       # makes `import aioble` raise ImportError
    try:
        with pytest.raises(ImportError, match="mip install aioble"):
            ble_service.BleService(Runtime(bench.locker), bench.cfg["locker_id"],
                                   (lambda: 0, lambda a, b: a - b))
    finally:
        sys.modules.pop("aioble", None)
        sys.modules.update(saved)


def test_link_payload_from_mtu():
    from radio import ble_service
    assert ble_service.link_payload(None) == 20
    assert ble_service.link_payload(23) == 20
    assert ble_service.link_payload(100) == 97
    assert ble_service.link_payload(517) == 244


# ---- the laptop side: tools/lockerctl/ble.py over fake bleak, same fake radio --------------

@pytest.fixture
def laptop(air):
    from fakes import fake_bleak
    fake_bleak.install(air.loop)
    yield air
    fake_bleak.uninstall()


def test_ble_transport_deposit_and_pickup(laptop, bench):
    from lockerctl.ble import BleTransport
    with BleTransport(bench.cfg["locker_id"], timeout=LINK_TIMEOUT_S) as courier_link:
        dep = LockerClient(courier_link).deposit(bench.courier(), size=2)
        assert courier_link.link_payload == 244
    with BleTransport(bench.cfg["locker_id"], timeout=LINK_TIMEOUT_S,
                      link_payload=20) as recipient_link:
        assert LockerClient(recipient_link).pickup(dep.code)["slot"] == dep.slot
        assert recipient_link.fragments_sent > 2          # the pickup took several writes


def test_ble_transport_names_the_locker_it_cannot_find(laptop):
    from lockerctl.ble import BleTransport
    from lockerctl.transport import TransportError
    t = BleTransport("00000000000000aa", scan_timeout=0.05)
    with pytest.raises(TransportError, match="no locker advertising as LKR-00000000000000AA"):
        t.connect()
    t.close()


# ---- flow control against the real stack's asynchronous, bounded write queue ------------
# (issue 13: NimBLE acknowledges writes before Python reads them; aioble keeps 10)

class RecordingRuntime(Runtime):
    def __init__(self, locker):
        Runtime.__init__(self, locker)
        self.frames = []

    def handle(self, session, frame):
        self.frames.append(frame)
        return Runtime.handle(self, session, frame)


@pytest.fixture
def slow_air(bench):
    a = Air(bench)
    a.service.runtime = RecordingRuntime(bench.locker)
    a.radio.reader_delay_s = 0.01          # the locker reads slower than the phone writes
    yield a
    a.close()


def _longest_request():
    return bytes((P.VERSION, P.HELLO)) + os.urandom(P.MAX_REQUEST - 2)


@pytest.mark.parametrize("link", [20, 244], ids=["20-byte writes", "244-byte long writes"])
def test_longest_legal_request_at_mtu_23_with_a_slow_reader(slow_air, link):
    # THE test of issue 13: 256 bytes at ATT MTU 23 is 14 fragments of 20 bytes (or 2 long
    # writes of 244). Without flow control the first ones are dropped from aioble's queue.
    phone = slow_air.phone(mtu=23, starts_mtu=True)
    frame = _longest_request()
    answer = slow_air.transport(phone, link=link).exchange(frame)
    assert slow_air.service.runtime.frames == [frame]       # whole, once, in order
    assert parse_response(answer)[0] == P.HELLO            # the request's own answer
    assert slow_air.radio.capture_dropped == 0
    assert slow_air.service.fragment_errors == 0
    assert phone.credits == credit_points(len(list(fragment.split(frame, link))))
    assert slow_air.radio.capture_peak <= core_link.WINDOW
    assert phone.received.empty()                            # one answer, nothing more


@pytest.mark.parametrize("mtu", [23, 247])
@pytest.mark.parametrize("link", [20, 244])
def test_deposit_and_pickup_with_a_slow_reader(slow_air, bench, mtu, link):
    phone = slow_air.phone(mtu=mtu, starts_mtu=True)
    client = LockerClient(slow_air.transport(phone, link=link))
    dep = client.deposit(bench.courier(), size=1)
    assert client.pickup(dep.code)["slot"] == dep.slot
    assert slow_air.radio.capture_dropped == 0
    assert max(phone.last_sizes) <= mtu - 3                  # answers sized to the MTU
    assert mtu > 23 or max(phone.last_sizes) == 20
    assert [f[1] for f in slow_air.service.runtime.frames] == [P.HELLO, P.DEPOSIT,
                                                               P.PICKUP_START, P.PICKUP_FINISH]


def test_a_phone_ignoring_credits_loses_fragments_in_the_real_queue(slow_air):
    # Guard for the tests above: the fake's queue really drops the oldest writes.
    phone = slow_air.phone(mtu=23, starts_mtu=True)
    air = slow_air
    air.send(phone, list(fragment.split(_longest_request(), 20)))
    air.settle(lambda: air.service.fragment_errors == 1)
    assert air.radio.capture_dropped > 0
    assert air.service.runtime.frames == []


def test_one_bad_request_gets_one_answer_then_silence_until_first(air):
    # 300 bytes in 20-byte fragments, sent blindly: 'message too large' at fragment 14
    # (E_TOO_LARGE, protocol.md 2), the 2 fragments after it are dropped silently; a new
    # FIRST is served (resync).
    phone = air.phone(mtu=23, starts_mtu=True)
    air.send(phone, list(fragment.split(bytes((P.VERSION, P.HELLO)) + bytes(298), 20)))
    air.settle(lambda: air.service.fragment_errors == 1)
    air.call(asyncio.sleep(0.05))
    pieces = []
    while not phone.received.empty():
        pieces.append(phone.received.get_nowait())
    answers = [p for p in pieces if not is_credit(p) and p[0] & fragment.FIRST]
    assert len(answers) == 1
    assert air.service.fragment_errors == 1
    reasm = fragment.Reassembler(P.MAX_RESPONSE)
    msg = [reasm.feed(p) for p in pieces if not is_credit(p)][-1]
    assert msg[1] == 0xFF and parse_response(msg)[1] == P.E_TOO_LARGE
    hello = air.transport(phone).exchange(P.request(P.HELLO))
    assert parse_response(hello)[1] == P.OK


def test_long_write_arrives_whole_up_to_the_buffer_and_is_refused_beyond(air):
    phone = air.phone(mtu=23, starts_mtu=True)
    whole = next(fragment.split(P.request(P.HELLO) + bytes(50), 53))
    assert len(whole) == 53 and whole[0] == fragment.FIRST | fragment.LAST
    air.call(phone.write(air.req_uuid, whole))
    air.settle(lambda: air.service.requests == 1)            # 53 bytes at MTU 23: whole
    with pytest.raises(fake_aioble.GattError) as e:
        air.call(phone.write(air.req_uuid, b"\xc0" + bytes(299)))
    assert e.value._status == 0x11
    with pytest.raises(ValueError):                           # no long write without response
        air.call(phone.write(air.req_uuid, b"\xc0" + bytes(30), response=False))


def test_request_completed_just_before_the_phone_left_is_not_evaluated(slow_air, bench):
    air = slow_air
    air.radio.reader_delay_s = 0.05
    phone = air.phone(mtu=247, starts_mtu=True)

    async def send_and_leave():
        for piece in fragment.split(P.request(P.HELLO), 244):
            await phone.write(air.req_uuid, piece)
        phone.vanish(reported=True)
    air.call(send_and_leave())
    air.settle(lambda: air.service.connection is None and air.radio.advertising is not None)
    assert air.service.runtime.frames == []
    phone2 = air.phone(mtu=247, starts_mtu=True)
    assert parse_response(air.transport(phone2).exchange(P.request(P.HELLO)))[1] == P.OK


# ---- issue 12.3: one connection cannot hold the locker ----------------------------------

def test_a_trickling_never_completing_request_is_dropped(bench):
    # one fragment of a request that never completes, every 0.7 x idle: the idle timer no
    # longer restarts on fragments, and the request itself has a deadline.
    a = Air(bench, idle_ms=300, request_ms=400, connection_ms=5000)
    try:
        phone = a.phone()
        pieces = list(fragment.split(bytes((P.VERSION, P.HELLO)) + bytes(200), 20))

        async def trickle():
            for piece in pieces[:-1]:
                if phone.link is None:
                    return True
                await phone.write(a.req_uuid, piece)
                await asyncio.sleep(0.21)
            return False
        assert a.call(trickle())
        assert a.service.idle_drops + a.service.slow_drops == 1
    finally:
        a.close()


def test_hello_every_few_moments_cannot_hold_the_connection(bench):
    a = Air(bench, idle_ms=300, request_ms=400, connection_ms=1000)
    try:
        phone = a.phone()
        t = a.transport(phone)
        hellos = 0
        with pytest.raises((ConnectionError, asyncio.TimeoutError, AssertionError)):
            while True:
                assert phone.link is not None
                t.exchange(P.request(P.HELLO))
                hellos += 1
                a.call(asyncio.sleep(0.1))
        assert a.service.slow_drops == 1
        assert 3 < hellos < 20
        a.settle(lambda: a.radio.advertising is not None)   # the next phone gets its turn
    finally:
        a.close()


@pytest.mark.parametrize("link", [None, 20], ids=["244-byte long writes", "20-byte writes"])
def test_ble_transport_longest_request_at_mtu_23_with_a_slow_reader(slow_air, link):
    from fakes import fake_bleak
    from lockerctl.ble import BleTransport
    fake_bleak.install(slow_air.loop, phone_mtu=23)
    try:
        frame = _longest_request()
        with BleTransport(slow_air.bench.cfg["locker_id"], timeout=LINK_TIMEOUT_S,
                          link_payload=link) as t:
            answer = t.exchange(frame)
            assert t.att_payload == 20
            assert t.fragments_sent == (2 if link is None else 14)
            assert t.credits == (0 if link is None else 1)
        assert parse_response(answer)[0] == P.HELLO
        assert slow_air.service.runtime.frames == [frame]
        assert slow_air.radio.capture_dropped == 0
    finally:
        fake_bleak.uninstall()


def test_half_loaded_aioble_is_named_not_a_missing_attribute(bench):
    # aioble's __init__ wraps `from .server import ...` in a bare except: a MemoryError there
    # leaves a module without Service; the locker says what happened instead.
    import types

    from radio import ble_service
    saved = {k: sys.modules.pop(k) for k in ("aioble", "bluetooth") if k in sys.modules}
    half = types.ModuleType("aioble")
    half.advertise = object()
    sys.modules["aioble"] = half
    sys.modules["bluetooth"] = fake_aioble.bluetooth
    try:
        with pytest.raises(ImportError, match="aioble has no Service.*out of memory"):
            ble_service.BleService(Runtime(bench.locker), bench.cfg["locker_id"],
                                   (lambda: 0, lambda a, b: a - b))
    finally:
        sys.modules.pop("aioble", None)
        sys.modules.pop("bluetooth", None)
        sys.modules.update(saved)
