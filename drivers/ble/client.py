"""Scan for and stream from BLE foot sensors with bleak and bleak-retry-connector.

Only bleak's public API is used, so the same code runs on a real adapter (BlueZ, CoreBluetooth,
WinRT) and on the emulated sensor (pass ``backend=``/``air=`` through ``scanner_kwargs`` and
``client_kwargs``; see :mod:`toetwitch.drivers.ble.emulator`).

The notification callback only copies the bytes onto an :class:`asyncio.Queue` with their
arrival times; decoding happens in the consumer task (bleak's advice for high-rate streams).
:class:`SensorLink` is the supervisor: connect, read Info, subscribe, START; after an
unsolicited disconnect it finds the sensor again, reconnects with capped backoff, subscribes
and sends START (resume), so the session carries on where it was. Nothing received is ever
dropped on the host side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError
from bleak_retry_connector import establish_connection

from toetwitch.drivers.ble.profiles import (
    DeviceProfile,
    get_profile,
    profile_for_services,
    service_uuids,
)
from toetwitch.drivers.errors import DriverError

logger = logging.getLogger("toetwitch")


class BluetoothUnavailableError(DriverError, RuntimeError):
    """This machine has no usable Bluetooth adapter (or no BlueZ/D-Bus on Linux)."""


class SensorNotFoundError(DriverError, RuntimeError):
    """No sensor matching the request answered in time."""


class LinkFailedError(DriverError, RuntimeError):
    """The link dropped and could not be re-established."""


NO_BLUETOOTH_HINT = (
    "no Bluetooth adapter is available on this machine ({why}). Check that Bluetooth is "
    "switched on (on Linux: the bluetooth service and D-Bus are running). To try toetwitch "
    "without a sensor, run: toetwitch monitor --emulate RECORDING"
)


def _unavailable(exc: BaseException) -> BluetoothUnavailableError | None:
    """Map the ways bleak reports a missing adapter/stack to one clear error, else None."""
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return BluetoothUnavailableError(NO_BLUETOOTH_HINT.format(why=str(exc) or "not available"))
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError | PermissionError):
        # BlueZ backend without a system D-Bus socket raises a bare OSError
        return BluetoothUnavailableError(NO_BLUETOOTH_HINT.format(why="no BlueZ D-Bus service"))
    if isinstance(exc, BleakDBusError) and "ServiceUnknown" in str(exc):
        return BluetoothUnavailableError(NO_BLUETOOTH_HINT.format(why="BlueZ is not running"))
    if isinstance(exc, BleakError) and "No Bluetooth adapters" in str(exc):
        return BluetoothUnavailableError(NO_BLUETOOTH_HINT.format(why="no adapter found"))
    return None


@dataclass(frozen=True)
class FoundSensor:
    """A sensor seen while scanning."""

    name: str | None
    address: str
    rssi: int
    profile: str
    device: BLEDevice = field(compare=False, repr=False)


async def scan(timeout_s: float = 5.0, **scanner_kwargs: Any) -> list[FoundSensor]:
    """Sensors advertising a known profile's service, strongest signal first."""
    try:
        found = await BleakScanner.discover(
            timeout=timeout_s, return_adv=True, service_uuids=service_uuids(), **scanner_kwargs
        )
    except Exception as exc:
        if (err := _unavailable(exc)) is not None:
            raise err from None
        raise
    out = []
    for dev, adv in found.values():
        prof = profile_for_services(adv.service_uuids, adv.local_name or dev.name)
        if prof is not None:
            out.append(FoundSensor(adv.local_name or dev.name, dev.address, adv.rssi, prof.name, dev))
    return sorted(out, key=lambda s: -s.rssi)


def _matches(target: str | None, device: BLEDevice, local_name: str | None) -> bool:
    if target is None:
        return True
    t = target.lower()
    return t in (device.address.lower(), (local_name or "").lower(), (device.name or "").lower())


async def find_sensor(
    target: str | None = None, timeout_s: float = 10.0, profile: DeviceProfile | None = None,
    **scanner_kwargs: Any,
) -> tuple[BLEDevice, DeviceProfile]:
    """A fresh :class:`BLEDevice` for ``target`` (address or advertised name; None = the
    first sensor of a known profile, or of ``profile`` when given) and its profile."""
    seen: dict[str, DeviceProfile] = {}

    def match(device: BLEDevice, adv: Any) -> bool:
        name = adv.local_name or device.name
        if profile is not None:
            prof = profile if profile.matches(name, adv.service_uuids) else None
        else:
            prof = profile_for_services(adv.service_uuids, name)
        if prof is None or not _matches(target, device, adv.local_name):
            return False
        seen[device.address] = prof
        return True

    try:
        dev = await BleakScanner.find_device_by_filter(
            match, timeout=timeout_s, service_uuids=service_uuids(), **scanner_kwargs
        )
    except Exception as exc:
        if (err := _unavailable(exc)) is not None:
            raise err from None
        raise
    if dev is None:
        what = (f"sensor {target!r}" if target
                else f"{profile.name} sensor" if profile is not None else "foot sensor")
        raise SensorNotFoundError(
            f"no {what} answered within {timeout_s:g} s: is it switched on, charged and "
            f"close by? ('toetwitch scan' lists the sensors in range)"
        )
    return dev, seen.get(dev.address) or profile or get_profile("toetwitch-v1")


@dataclass(frozen=True, slots=True)
class LinkItem:
    """One item from the link to the consumer.

    ``kind``: ``"info"`` (data = Info characteristic bytes), ``"packet"`` (one
    notification), ``"connected"``, ``"disconnected"``, ``"stopped"``. ``host_time_ns`` is
    the wall clock (Unix epoch ns) and ``arrival_ns`` a monotonic clock (``perf_counter_ns``)
    at arrival, for latency figures.
    """

    kind: str
    data: bytes = b""
    host_time_ns: int = 0
    arrival_ns: int = 0
    detail: dict[str, Any] | None = None


def _item(kind: str, data: bytes = b"", **detail: Any) -> LinkItem:
    return LinkItem(kind, data, time.time_ns(), time.perf_counter_ns(), detail or None)


class SensorLink:
    """Supervised connection to one sensor, feeding :class:`LinkItem` to ``queue``.

    Parameters
    ----------
    target : str or None
        Address or advertised name; None takes the first sensor of a known profile.
    queue : asyncio.Queue
        Receives :class:`LinkItem` objects (unbounded: nothing received is dropped).
    scanner_kwargs, client_kwargs : dict
        Passed to ``BleakScanner``/``BleakClient`` (e.g. ``backend=``, ``air=``, ``bluez=``).
    max_reconnects : int or None
        Give up (``LinkFailedError``) after this many failed reconnect attempts in a row;
        None keeps trying until :meth:`stop`.
    profile : DeviceProfile or None
        Speak this profile (``monitor --device``, with its settings); None takes the profile
        the sensor advertises.
    """

    def __init__(
        self,
        target: str | None,
        queue: asyncio.Queue[LinkItem],
        *,
        scanner_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        scan_timeout_s: float = 10.0,
        connect_attempts: int = 4,
        max_reconnects: int | None = None,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        profile: DeviceProfile | None = None,
    ):
        self.target = target
        self.queue = queue
        self.scanner_kwargs = dict(scanner_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.scan_timeout_s = scan_timeout_s
        self.connect_attempts = connect_attempts
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.forced_profile = profile
        self.profile: DeviceProfile | None = profile
        self.connections = 0
        self.drops = 0
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._client: BleakClient | None = None

    def stop(self) -> None:
        """Ask :meth:`run` to send STOP, disconnect and return."""
        self._stop.set()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def _on_notify(self, _sender: Any, data: bytearray) -> None:
        # bleak calls this for every notification: copy and hand over, nothing else
        self.queue.put_nowait(LinkItem("packet", bytes(data), time.time_ns(), time.perf_counter_ns()))

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._lost.set()

    async def _connect(self) -> BleakClient:
        device, profile = await find_sensor(self.target, self.scan_timeout_s,
                                            self.forced_profile, **self.scanner_kwargs)
        self.profile = profile
        try:
            client = await establish_connection(
                BleakClient,
                device,
                device.name or device.address,
                disconnected_callback=self._on_disconnect,
                max_attempts=self.connect_attempts,
                **self.client_kwargs,
            )
        except Exception as exc:
            if (err := _unavailable(exc)) is not None:
                raise err from None
            raise
        return client

    async def _session(self, client: BleakClient, first: bool) -> None:
        """Subscribe and START on a fresh connection."""
        assert self.profile is not None
        if self.profile.open_session is not None:  # the profile's own handshake
            # data may flow before the handshake returns the session description: hold it
            # back so that the consumer always sees the description first
            held: list[LinkItem] | None = []

            def deliver(data: bytes) -> None:
                item = LinkItem("packet", data, time.time_ns(), time.perf_counter_ns())
                if held is None:
                    self.queue.put_nowait(item)
                else:
                    held.append(item)

            info = await self.profile.open_session(client, self.profile, deliver, first)
            if first and info is not None:
                self.queue.put_nowait(_item("info", info, address=client.address))
            self.connections += 1
            self.queue.put_nowait(_item("connected", address=client.address, resume=not first,
                                        mtu=client.mtu_size))
            for item in held:
                self.queue.put_nowait(item)
            held = None
            return
        if first:
            assert self.profile.info_uuid is not None
            info = await client.read_gatt_char(self.profile.info_uuid)
            self.queue.put_nowait(_item("info", bytes(info), address=client.address))
        await client.start_notify(self.profile.data_uuid, self._on_notify)
        # START goes after start_notify: notifications sent before the CCCD write lands are lost
        await client.write_gatt_char(self.profile.control_uuid, self.profile.start(not first),
                                     response=True)
        self.connections += 1
        self.queue.put_nowait(_item("connected", address=client.address, resume=not first,
                                    mtu=client.mtu_size))

    async def run(self) -> None:
        """Connect and stream until :meth:`stop`; reconnect after drops."""
        first = True
        failures = 0
        while not self._stop.is_set():
            self._lost.clear()
            try:
                client = await self._connect()
                self._client = client
                await self._session(client, first)
            except (BluetoothUnavailableError, asyncio.CancelledError):
                raise
            except (SensorNotFoundError, BleakError, TimeoutError, OSError) as exc:
                if first and not isinstance(exc, BleakError):
                    raise
                await self._close_client()
                failures += 1
                if self.max_reconnects is not None and failures > self.max_reconnects:
                    raise LinkFailedError(
                        f"the sensor link could not be re-established after {failures - 1} "
                        f"attempts ({exc})"
                    ) from exc
                if first and failures > self.connect_attempts:
                    raise LinkFailedError(f"could not connect to the sensor ({exc})") from exc
                await self._sleep(min(self.backoff_s[1], self.backoff_s[0] * 2 ** (failures - 1)))
                continue
            if first and self.target is None:
                self.target = client.address  # reconnect to this sensor, not any other one
            first = False
            failures = 0
            stop_wait = asyncio.ensure_future(self._stop.wait())
            lost_wait = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({stop_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
                lost_wait.cancel()
            if self._stop.is_set() and not self._lost.is_set():
                await self._graceful_stop(client)
                break
            self.drops += 1
            logger.info("sensor link dropped; reconnecting")
            self.queue.put_nowait(_item("disconnected"))
            await self._close_client()
        self.queue.put_nowait(_item("stopped"))

    async def _graceful_stop(self, client: BleakClient) -> None:
        assert self.profile is not None
        try:
            if client.is_connected and self.profile.close_session is not None:
                await self.profile.close_session(client, self.profile)
            elif client.is_connected:
                await client.write_gatt_char(self.profile.control_uuid, self.profile.stop(),
                                             response=True)
                await client.stop_notify(self.profile.data_uuid)
        except (BleakError, TimeoutError, OSError) as exc:
            logger.debug("stopping the sensor failed: %s", exc)
        await self._close_client()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except (BleakError, TimeoutError, OSError) as exc:
                logger.debug("disconnect failed: %s", exc)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass
