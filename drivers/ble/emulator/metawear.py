"""An emulated MbientLab MetaWear / MetaMotion board, serving any recording's accelerometer
on a :class:`VirtualAir`.

It follows the MetaWear C++ SDK's view of the board (see
:mod:`toetwitch.drivers.ble.profiles.metawear` and docs/wearables.md):

* GATT: the MetaWear service with its command characteristic (write without response, and
  write) and notify characteristic; the Device Information Service (firmware, model number,
  hardware, manufacturer, serial); packets of at most 20 bytes (ATT MTU 23).
* Module discovery: every read ``[id, 0x80]`` of the 25 modules the SDK queries is answered
  ``[id, 0x80, implementation, revision]``, or ``[id, 0x80]`` for a module the board lacks (a
  MetaMotion R's set; the accelerometer is a BMI160 or BMI270, revision 1, so packed data
  exists).
* Accelerometer: config ``[03 03 conf range]`` (ODR and range as the SDK encodes them),
  subscribe / unsubscribe to data ``[03 04]`` or packed data (``[03 1C]``, BMI270 ``[03 05]``),
  enable / disable sampling ``[03 02]``, start / stop ``[03 01]``; streaming runs while the
  board is started, sampling is enabled, a data route is subscribed and a host is connected.
  Data: ``[03 04 x y z]`` int16 LE per sample, or 3 samples per packed notification, in LSB
  at the configured range; **no counter and no time**.
* Settings ``[11 09 ...]`` (connection parameters) are accepted; other writes are ignored.

What a real board does with a running accelerometer when the link drops is not verified: the
emulated one stops it (keeping its configuration), and the host's reconnect handshake
starts it again. At a finite ``speed`` the recording runs on meanwhile (those samples are
never measured: :attr:`MetaWearStats.samples_skipped`); at ``speed=None`` no time passes.
:attr:`EmulatedMetaWear.stats` is the truth (samples sent and lost), which the host cannot see.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np
from bumble.device import Connection, Device
from bumble.gatt import (
    GATT_DEVICE_INFORMATION_SERVICE,
    Characteristic,
    CharacteristicValue,
    Service,
)

from toetwitch.drivers.ble.emulator.backend import VirtualAir
from toetwitch.drivers.ble.emulator.peripheral import EmulatedPeripheral, SeededLoss
from toetwitch.drivers.ble.emulator.wearable import advertisement, recording_acc_g
from toetwitch.drivers.ble.profiles import metawear as mw
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")

IMUS = {"BMI160": mw.IMPL_BMI160, "BMI270": mw.IMPL_BMI270}
#: A MetaMotion R's modules (id -> implementation, revision); the others answer "absent".
BOARD_MODULES: dict[int, tuple[int, int]] = {
    0x01: (0, 0), 0x02: (0, 1), 0x04: (1, 0), 0x05: (0, 2), 0x07: (0, 0), 0x08: (0, 0),
    0x09: (0, 3), 0x0A: (0, 0), 0x0B: (0, 2), 0x0C: (0, 0), 0x0D: (0, 1), 0x0F: (0, 1),
    0x11: (0, 9), 0x12: (0, 0), 0x13: (0, 1), 0x14: (0, 0), 0x15: (0, 2), 0x19: (0, 2),
    0xFE: (0, 3),
}


@dataclass(frozen=True)
class MetaWearConfig:
    """How the emulated board behaves.

    ``speed``: multiple of real time (None: as fast as the stack goes). ``loss``: share of
    notifications lost on the air (seeded by ``seed``). ``disconnect_every``: drop the link
    after every this many notifications. ``imu``: ``"BMI160"`` or ``"BMI270"``;
    ``acc_revision``: the accelerometer module's revision (packed data needs 1).
    The Device Information strings are what the board reports.
    """

    name: str = "MetaWear EMU"
    address: str | None = None
    speed: float | None = 1.0
    loss: float = 0.0
    seed: int = 0
    disconnect_every: int = 0
    imu: str = "BMI160"
    acc_revision: int = 1
    firmware: str = "1.7.3"
    model_number: str = "5"
    hardware: str = "0.4"
    manufacturer: str = "MbientLab Inc"
    serial: str = "EMU001"


@dataclass
class MetaWearStats:
    """What the board did (truth for tests; the host cannot see any of the loss)."""

    odr_hz: float | None = None
    range_g: int | None = None
    samples_produced: int = 0  # measured while streaming
    samples_sent: int = 0
    samples_lost: int = 0  # in notifications lost on the air
    skipped: list[tuple[int, int]] = field(default_factory=list)  # (first sample, count) of each
    notifications: int = 0
    dropped_random: int = 0
    disconnects: int = 0
    connections: int = 0
    starts: int = 0
    discovery_reads: int = 0
    connection_parameters: list[bytes] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)

    @property
    def samples_skipped(self) -> int:
        """Samples the recording ran on by while the board was stopped (never measured)."""
        return sum(n for _, n in self.skipped)


class EmulatedMetaWear(EmulatedPeripheral):
    """A MetaWear board on ``air`` whose accelerometer measures ``recording``.

    ``await board.start()`` powers it on and advertises; :attr:`finished` is set when the
    recording has been sent to its end.
    """

    def __init__(self, air: VirtualAir, recording: Recording, config: MetaWearConfig | None = None):
        self.air = air
        self.cfg = cfg = config or MetaWearConfig()
        if cfg.imu not in IMUS:
            raise ValueError(f"imu must be one of {tuple(IMUS)}, not {cfg.imu!r}")
        self.recording = recording
        # resampled at the host's default ODR now (it also says why a recording cannot be
        # served): not inside a command's write callback
        self._acc_by_odr = {100.0: recording_acc_g(recording, 100.0)}
        self.impl = IMUS[cfg.imu]
        self._loss = SeededLoss(cfg.loss, cfg.seed)
        self.stats = MetaWearStats()
        self.finished = asyncio.Event()
        self.address = cfg.address or air.new_address(0xD6)
        self.device, self._controller = air.new_device(cfg.name, self.address)
        self._conn: Connection | None = None
        # power-on state of the accelerometer (the SDK's defaults: 100 Hz, ±2 g)
        self._odr_hz, self._range_g = 100.0, 2
        self._routes: set[int] = set()  # subscribed data registers
        self._enabled = False
        self._started = False
        self._raw: np.ndarray | None = None  # int16 LSB at the ODR and range in force
        self._raw_key: tuple[float, int] | None = None
        self._cursor = 0
        self._t0: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._build_gatt()

    # -- GATT -----------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        cfg = self.cfg
        self._notify_char = Characteristic(mw.NOTIFY_UUID, Characteristic.Properties.NOTIFY,
                                           Characteristic.READABLE, b"")
        command = Characteristic(
            mw.COMMAND_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE | Characteristic.Properties.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_command),
        )
        self.device.add_service(Service(mw.SERVICE_UUID, [command, self._notify_char]))
        dis_values = (cfg.firmware, cfg.model_number, cfg.hardware, cfg.manufacturer, cfg.serial)
        self.device.add_service(Service(GATT_DEVICE_INFORMATION_SERVICE, [
            Characteristic(uuid, Characteristic.Properties.READ, Characteristic.READABLE,
                           value.encode())
            for uuid, value in zip(mw.DIS_UUIDS, dis_values, strict=True)]))
        self.device.gatt_server.max_mtu = 23  # the board's packets are at most 20 bytes
        self.device.advertising_data, self.device.scan_response_data = advertisement(
            cfg.name, uuid128=(mw.SERVICE_UUID,))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._set_started(False)

    def _notify(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None:
            asyncio.get_running_loop().create_task(
                self.device.notify_subscriber(conn, self._notify_char, data))

    def module_info(self, module_id: int) -> mw.ModuleInfo:
        if module_id == mw.MODULE_ACCELEROMETER:
            return mw.ModuleInfo(module_id, self.impl, self.cfg.acc_revision)
        impl_rev = BOARD_MODULES.get(module_id)
        return mw.ModuleInfo(module_id, None) if impl_rev is None else mw.ModuleInfo(module_id, *impl_rev)

    def _on_command(self, _conn: Connection, value: bytes) -> None:
        v = bytes(value)
        self.stats.commands.append(v)
        if len(v) < 2:
            return
        module, reg = v[0], v[1]
        if reg == mw.READ and len(v) == 2:
            self.stats.discovery_reads += 1
            self._notify(mw.encode_module_info(self.module_info(module)))
        elif module == mw.MODULE_SETTINGS and reg == 0x09 and len(v) == 10:
            self.stats.connection_parameters.append(v)
        elif module == mw.MODULE_ACCELEROMETER:
            self._accelerometer(reg, v[2:])

    def _accelerometer(self, reg: int, data: bytes) -> None:
        if reg == mw.REG_DATA_CONFIG:
            try:
                self._odr_hz, self._range_g = mw.decode_acc_config(self.impl, bytes([3, reg]) + data)
            except RecordingError as exc:
                logger.info("emulated MetaWear: %s; ignored", exc)
        elif reg in (mw.REG_DATA, mw.PACKED_REG[self.impl]) and len(data) == 1:
            if data[0]:
                self._routes.add(reg)
            else:
                self._routes.discard(reg)
        elif reg == mw.REG_DATA_INTERRUPT_ENABLE and len(data) == 2:
            self._enabled = bool(data[0] & 1) or (self._enabled and not data[1] & 1)
        elif reg == mw.REG_POWER_MODE and len(data) == 1:
            self._set_started(data[0] in (1, 2))
        self._update()

    # -- acquisition ----------------------------------------------------------------------
    def _set_started(self, on: bool) -> None:
        if on and not self._started:
            self.stats.starts += 1
        self._started = on
        if not on:
            self._update()

    @property
    def streaming(self) -> bool:
        return (self._started and self._enabled and bool(self._routes)
                and self._conn is not None)

    def _update(self) -> None:
        """Start or stop the streaming task to match the board's state."""
        if self.streaming and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif not self.streaming and self._task is not None:
            if self._task is not asyncio.current_task():
                self._task.cancel()
            self._task = None

    def _samples(self) -> np.ndarray:
        key = (self._odr_hz, self._range_g)
        if self._raw_key != key:
            if self._odr_hz not in self._acc_by_odr:
                self._acc_by_odr[self._odr_hz] = recording_acc_g(self.recording, self._odr_hz)
            acc_g = self._acc_by_odr[self._odr_hz]
            lsb = mw.LSB_PER_G[self._range_g]
            if self._raw_key is not None and self._raw is not None:  # same instant, new rate
                self._cursor = round(self._cursor * self._odr_hz / self._raw_key[0])
                self._t0 = None
            self._raw = np.clip(np.round(acc_g * lsb), -32768, 32767).astype(np.int64)
            self._raw_key = key
            self.stats.odr_hz, self.stats.range_g = key
        assert self._raw is not None
        return self._raw

    def _halt(self) -> None:
        self._set_started(False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        raw = self._samples()
        fs, speed = self._odr_hz, self.cfg.speed
        if speed is not None:
            if self._t0 is None:
                self._t0 = loop.time() - self._cursor / fs / speed
            else:  # the recording ran on while the board was stopped
                due = min(len(raw), int((loop.time() - self._t0) * fs * speed))
                if due > self._cursor:
                    self._skip_to(due)
        try:
            await self._stream(raw, fs, speed)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _skip_to(self, due: int) -> None:
        self.stats.skipped.append((self._cursor, due - self._cursor))
        self._cursor = due

    async def _stream(self, raw: np.ndarray, fs: float, speed: float | None) -> None:
        loop = asyncio.get_running_loop()
        packed_reg = mw.PACKED_REG[self.impl]
        while self._cursor < len(raw):
            conn = self._conn
            if conn is None or not self.streaming:
                return
            packed = packed_reg in self._routes
            per = 3 if packed else 1
            i = self._cursor
            end = min(len(raw), i + per)
            if speed is not None:
                assert self._t0 is not None
                delay = self._t0 + end / fs / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if self._conn is not conn or not self.streaming:
                        return
            if end - i < per:  # the recording's last samples fill no packed notification
                break
            (note,) = mw.encode_acc_notifications(raw[i:end], self.impl, packed)
            self._cursor = end
            self.stats.samples_produced += end - i
            if self._loss.lose():
                self.stats.dropped_random += 1
                self.stats.samples_lost += end - i
            else:
                await self.device.notify_subscriber(conn, self._notify_char, note)
                self.stats.notifications += 1
                self.stats.samples_sent += end - i
            if speed is None:
                await asyncio.sleep(0)
            every = self.cfg.disconnect_every
            if every and (self.stats.notifications + self.stats.dropped_random) % every == 0 \
                    and len(raw) - self._cursor >= per:
                await self.drop_link()
                return
        self.finished.set()
