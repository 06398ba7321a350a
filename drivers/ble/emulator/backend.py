"""A bleak backend on bumble's in-process virtual radio (``bumble.link.LocalLink``).

bleak's documented ``backend=`` hook takes a scanner and a client class; these two run every
bleak call over a real BLE host stack (bumble: HCI, L2CAP, ATT, GATT) whose controllers talk
through a :class:`VirtualAir` instead of an antenna. Code written against bleak's public API
(``BleakScanner``, ``BleakClient``, ``bleak_retry_connector.establish_connection``) runs
unchanged::

    air = VirtualAir()
    dev = await BleakScanner.find_device_by_filter(f, backend=BumbleScanner, air=air)
    client = await establish_connection(BleakClient, dev, dev.name, backend=BumbleClient, air=air)

No sockets, no hardware, no root. bumble is pinned exactly (``bumble==0.0.236``): it is 0.0.x
and its API moves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

logger = logging.getLogger("toetwitch")

#: Fixed RSSI of the virtual radio (LocalLink has no path loss).
VIRTUAL_RSSI = -50

_PROPS = [
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
]


class VirtualAir:
    """The shared virtual radio: one :class:`bumble.link.LocalLink` plus address allocation.

    Every scanner or client session gets a fresh virtual controller on this link, as an
    adapter would; peripherals (see :mod:`toetwitch.drivers.ble.emulator.sensor`) add their own.
    Create one per event loop: bumble schedules link traffic on the running loop.
    """

    def __init__(self) -> None:
        self.link = LocalLink()
        self._ids = itertools.count(1)

    def new_address(self, kind: int = 0xC0) -> str:
        """A fresh random static address (top two bits set), unique on this air."""
        n = next(self._ids)
        return f"{kind:02X}:00:00:00:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}"

    def new_device(self, name: str, address: str | None = None) -> tuple[Device, Controller]:
        """A bumble :class:`Device` with its own controller on the link (not yet powered)."""
        address = address or self.new_address()
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(
            name=name,
            address=hci.Address(address),
            host=Host(controller, AsyncPipeSink(controller)),  # async sink: no re-entrant HCI
        )
        return device, controller

    def unplug(self, controller: Controller) -> None:
        """Take a controller off the air, as if switched off or out of range.

        (Keep the Controller object to do this: ``host.controller`` is only a pipe.) It also
        gets a private empty link: a bumble controller keeps advertising on its own timer
        after its host powers off, and those packets must reach no one."""
        if controller in self.link.controllers:
            self.link.remove_controller(controller)
        controller.link = LocalLink()


def bleak_uuid(uuid: UUID) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string."""
    return normalize_uuid_str(uuid.to_hex_str("-").lower())


def _air_from(kwargs: dict[str, Any], device: BLEDevice | str | None = None) -> VirtualAir:
    air = kwargs.get("air")
    if air is None and isinstance(device, BLEDevice) and isinstance(device.details, dict):
        air = device.details.get("air")
    if not isinstance(air, VirtualAir):
        raise BleakError("the bumble backend needs air=VirtualAir(...)")
    return air


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """Map a bumble advertisement to bleak's :class:`AdvertisementData`."""
    data = adv.data
    uuids: list[str] = []
    for t in (
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        uuids += [bleak_uuid(u) for u in (data.get(t) or [])]
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    manufacturer: dict[int, bytes] = {}
    for raw in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA, raw=True) or []:
        if len(raw) >= 2:
            manufacturer[int.from_bytes(raw[:2], "little")] = bytes(raw[2:])
    tx = data.get(AdvertisingData.TX_POWER_LEVEL)
    rssi = adv.rssi if adv.rssi != Advertisement.RSSI_NOT_AVAILABLE else VIRTUAL_RSSI
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data={},
        service_uuids=uuids,
        tx_power=tx,
        rssi=rssi if rssi < 127 else VIRTUAL_RSSI,
        platform_data=(adv,),
    )


def address_str(address: hci.Address) -> str:
    """``F0:F0:...`` without bumble's ``/P`` type suffix."""
    return address.to_string(with_type_qualifier=False)


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on a :class:`VirtualAir` (pass ``air=`` through bleak's kwargs)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._air = _air_from(kwargs)
        self._device: Device | None = None
        self._controller: Controller | None = None
        self._active = scanning_mode != "passive"

    async def start(self) -> None:
        self.seen_devices = {}
        self._device, self._controller = self._air.new_device("toetwitch-scanner")
        self._device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self._device.power_on()
        await self._device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        if self._device is None:
            return
        try:
            await self._device.stop_scanning()
            await self._device.power_off()
        finally:
            if self._controller is not None:
                self._air.unplug(self._controller)
            self._device = self._controller = None

    def _on_advertisement(self, adv: Advertisement) -> None:
        ad = advertisement_data(adv)
        addr = address_str(adv.address)
        prev = self.seen_devices.get(addr)
        if prev is not None:  # merge with what earlier reports said, as BlueZ does
            old = prev[1]
            ad = ad._replace(
                local_name=ad.local_name or old.local_name,
                service_uuids=list(dict.fromkeys(old.service_uuids + ad.service_uuids)),
                manufacturer_data={**old.manufacturer_data, **ad.manufacturer_data},
            )
        if not self.is_allowed_uuid(ad.service_uuids):
            return
        details = {"air": self._air, "address": adv.address}
        device = self.create_or_update_device(addr, addr, ad.local_name, details, ad)
        self.call_detection_callbacks(device, ad)


class BumbleClient(BaseBleakClient):
    """bleak client backend: a fresh virtual central per connection (as bleak advises).

    Extra kwargs: ``air`` (if the :class:`BLEDevice` did not come from :class:`BumbleScanner`)
    and ``mtu`` (ATT MTU to request, default 247).
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Any = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._air = _air_from(kwargs, address_or_ble_device)
        self._mtu_request = int(kwargs.get("mtu", 247))
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._device: Device | None = None
        self._controller: Controller | None = None
        self._conn: Connection | None = None
        self._peer: Peer | None = None
        self._disconnecting = False
        self._gone: asyncio.Event = asyncio.Event()
        self._subscribers: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._conn.att_mtu if self._conn is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._conn is not None and not self._gone.is_set()

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        # bleak-retry-connector passes its own timeout (20 s); the client's may be shorter
        timeout = min(float(kwargs.get("timeout") or self._timeout), float(self._timeout))
        self._device, self._controller = self._air.new_device("toetwitch-central")
        try:
            # bumble's own connect timeout can hang on LocalLink (the virtual controller never
            # completes the cancel): bound the whole setup here and throw the central away
            await asyncio.wait_for(self._connect_and_discover(), timeout)
        except TimeoutError:
            found = self._conn is not None
            self._abandon()
            if not found:
                raise BleakDeviceNotFoundError(
                    self.address, f"device {self.address} not found on the virtual air"
                ) from None
            raise TimeoutError(f"GATT setup with {self.address} timed out") from None
        except BaseException:
            self._abandon()
            raise

    async def _connect_and_discover(self) -> None:
        assert self._device is not None
        await self._device.power_on()
        conn = await self._device.connect(hci.Address(self.address), timeout=None)
        self._conn = conn
        self._gone = asyncio.Event()
        conn.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(conn)
        self._peer = peer
        await peer.request_mtu(self._mtu_request)
        await peer.discover_services()
        for service in peer.services:
            await service.discover_characteristics()
            for char in service.characteristics:
                await char.discover_descriptors()
        self.services = self._collection(peer)

    def _abandon(self) -> None:
        """Forget a half-made connection: unplug our virtual controller (no HCI exchange)."""
        self._gone.set()
        self._conn = None
        self._cleanup()

    def _collection(self, peer: Peer) -> BleakGATTServiceCollection:
        col = BleakGATTServiceCollection()
        for s in peer.services:
            service = BleakGATTService(s, s.handle, bleak_uuid(s.uuid))
            col.add_service(service)
            for c in s.characteristics:
                props = [name for bit, name in _PROPS if int(c.properties) & bit]
                char = BleakGATTCharacteristic(
                    c, c.handle, bleak_uuid(c.uuid), props, lambda: self.mtu_size - 3, service
                )
                col.add_characteristic(char)
                for d in c.descriptors:
                    col.add_descriptor(BleakGATTDescriptor(d, d.handle, bleak_uuid(d.type), char))
        return col

    def _on_disconnection(self, reason: int) -> None:
        self._gone.set()
        self._conn = None
        logger.debug("virtual link to %s dropped (reason 0x%02x)", self.address, reason)
        unsolicited = not self._disconnecting
        self._cleanup()
        if unsolicited and self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    def _cleanup(self) -> None:
        if self._controller is not None:
            self._air.unplug(self._controller)
        self._controller = None
        self._peer = None

    async def disconnect(self) -> None:
        conn = self._conn
        if conn is None or self._gone.is_set():
            self._cleanup()
            return
        self._disconnecting = True
        try:
            # bounded: if the peer's controller vanished the command is never answered
            await asyncio.wait_for(self._disconnect(conn), 2.0)
        except (TimeoutError, hci.HCI_Error, core.BaseBumbleError):
            self._abandon()

    async def _disconnect(self, conn: Connection) -> None:
        await conn.disconnect()
        await self._gone.wait()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the emulated sensor needs no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("the emulated sensor needs no pairing")

    def _check(self) -> Peer:
        if self._peer is None or not self.is_connected:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._check()
        try:
            return bytearray(await characteristic.obj.read_value())
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from None

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._check()
        return bytearray(await descriptor.obj.read_value())

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        self._check()
        try:
            await characteristic.obj.write_value(bytes(data), with_response=response)
        except att.ATT_Error as exc:  # bleak 3 surfaces ATT error responses as this
            raise BleakGATTProtocolError(exc.error_code) from None

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        self._check()
        await descriptor.obj.write_value(bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._check()

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = on_value
        await characteristic.obj.subscribe(on_value)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._check()
        sub = self._subscribers.pop(characteristic.handle, None)
        await characteristic.obj.unsubscribe(sub)


async def power_down(device, conn, air: VirtualAir, controller) -> None:  # noqa: ANN001
    """An emulated peripheral's teardown: drop its link if any, power off, leave the air."""
    if conn is not None:
        try:
            await conn.disconnect()
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass
    try:
        await device.power_off()
    finally:
        air.unplug(controller)


def advertise(device: Device, name: str, service_uuid: str) -> None:
    """Set what an emulated peripheral advertises: flags, its 128-bit service and its name.

    Flags (3 B) and the service (18 B) leave 8 name bytes of the 31: a longer name is
    shortened in the advertisement and sent whole in the scan response, as real sensors do.
    """
    raw = name.encode()
    room = 31 - 3 - 18 - 2
    name_ad = ((AdvertisingData.COMPLETE_LOCAL_NAME, raw) if len(raw) <= room
               else (AdvertisingData.SHORTENED_LOCAL_NAME, raw[:room]))
    device.advertising_data = bytes(AdvertisingData([
        (AdvertisingData.FLAGS, bytes([0x06])),
        (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, UUID(service_uuid).to_bytes()),
        name_ad,
    ]))
    device.scan_response_data = bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, raw)]))
