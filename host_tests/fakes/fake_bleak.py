"""Fake `bleak` for testing tools/lockerctl/ble.py: BleakScanner/BleakClient driving a
fake_aioble.Phone across the fake radio, so the laptop transport talks to the firmware's real
ble_service. Like BlueZ, the client exchanges the MTU itself on connect and reports the
write size through the characteristic's max_write_without_response_size (so the locker's
own exchange meets EALREADY). A write with response longer than that is a long write
(fake_aioble.Phone.write), like BlueZ's."""
import asyncio
import sys
import types

from fakes import fake_aioble


class BLEDevice:
    def __init__(self, name):
        self.name = name
        self.address = "locker"


def install(radio_loop, phone_mtu=247):
    """radio_loop: the loop the fake radio and the locker's service run on."""

    def on_radio(coro):
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, radio_loop))

    class BleakScanner:
        @classmethod
        async def find_device_by_name(cls, name, timeout=10.0, **kw):
            async def advertised():
                ad = fake_aioble.RADIO.advertising
                return ad and ad["name"]
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                if await on_radio(advertised()) == name:
                    return BLEDevice(name)
                await asyncio.sleep(0.01)
            return None

    class Char:
        def __init__(self, phone):
            self.phone = phone

        @property
        def max_write_without_response_size(self):
            return self.phone.att_payload()

    class Services:
        def __init__(self, phone):
            self.phone = phone

        def get_characteristic(self, uuid):
            for c in fake_aioble.RADIO.characteristics.values():
                if c.uuid == fake_aioble.UUID(uuid):
                    return Char(self.phone)
            return None

    class BleakClient:
        def __init__(self, device, disconnected_callback=None, timeout=30, **kw):
            self.device = device
            self.phone = fake_aioble.Phone(mtu=phone_mtu)
            self.services = None
            self._pump = None

        async def connect(self):
            async def go():
                await self.phone.connect(self.device.name)
                self.phone.initiate_mtu()
            await on_radio(go())
            self.services = Services(self.phone)

        async def start_notify(self, uuid, callback):
            loop = asyncio.get_running_loop()
            phone = self.phone

            async def pump():
                while True:
                    data = await phone.received.get()
                    loop.call_soon_threadsafe(callback, None, bytearray(data))

            async def sub():
                phone.subscribe()
                self._pump = asyncio.ensure_future(pump())
            await on_radio(sub())

        async def write_gatt_char(self, uuid, data, response=None):
            await on_radio(self.phone.write(fake_aioble.UUID(uuid), bytes(data),
                                            response=bool(response)))

        async def disconnect(self):
            async def go():
                if self._pump:
                    self._pump.cancel()
                await self.phone.disconnect()
            await on_radio(go())

    mod = types.ModuleType("bleak")
    mod.BleakScanner = BleakScanner
    mod.BleakClient = BleakClient
    sys.modules["bleak"] = mod
    return mod


def uninstall():
    sys.modules.pop("bleak", None)
