"""An emulated Polar H10 or Verity Sense on a :class:`VirtualAir`, serving the accelerometer
of any recording over Polar Measurement Data (PMD).

It follows the public protocol (Polar BLE SDK, docs/evidence.md): the PMD service with its
control point (read: feature bitmap; write; indicate: replies ``F0 op type status more
params``, split over several indications when longer than the link allows) and data
characteristic (notify); GET_MEASUREMENT_SETTINGS (H10: 25/50/100/200 Hz, ±2/4/8 g; Verity
Sense: 52 Hz ±8 g, or 26–416 Hz ±2–16 g once SDK mode is on), START with the error statuses
a device gives (invalid sample rate, invalid range, invalid resolution, invalid MTU below
232, already in state), a START reply carrying FACTOR, STOP; data frames of the model's kind
(H10 raw int16 mG, Verity Sense delta-compressed in FACTOR units) stamped with the device
clock's ns since 2000-01-01 at their last sample. When the link drops the measurement stops
(the host starts it again after reconnecting) while the device clock runs on; when the
recording is over the device sends ONLINE_MEASUREMENT_STOPPED.

The recording's accelerometer is resampled to the rate the host started (polyphase,
``scipy.signal.resample_poly``), clipped to the range and quantised: whole mG for raw
frames, FACTOR units (range / 32768) for compressed ones. A recording without an
accelerometer is refused: a Polar device streams nothing else. Test knobs: seeded
notification loss, forced disconnects, a forced START status, the indication length.
:attr:`EmulatedPolar.stats` is the truth the host's accounting is checked against.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np
from bumble import core
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from toetwitch.drivers.ble.emulator.backend import VirtualAir
from toetwitch.drivers.ble.emulator.bitalino import resample
from toetwitch.drivers.ble.emulator.peripheral import EmulatedPeripheral, SeededLoss
from toetwitch.drivers.ble.profiles import polar_pmd as pmd
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")

#: What each model offers for ACC: outside SDK mode, and in it (None: the model has none).
OFFERS = {
    "h10": ({pmd.SETTING_SAMPLE_RATE: (25, 50, 100, 200), pmd.SETTING_RESOLUTION: (16,),
             pmd.SETTING_RANGE: (2, 4, 8)}, None),
    "verity": ({pmd.SETTING_SAMPLE_RATE: (52,), pmd.SETTING_RESOLUTION: (16,),
                pmd.SETTING_RANGE: (8,), pmd.SETTING_CHANNELS: (3,)},
               {pmd.SETTING_SAMPLE_RATE: pmd.VERITY_ACC["sample_rate_hz"],
                pmd.SETTING_RESOLUTION: (16,), pmd.SETTING_RANGE: pmd.VERITY_ACC["range_g"],
                pmd.SETTING_CHANNELS: (3,)}),
}
#: Feature bitmaps (the H10 reads ``0f 05 00``: ECG and ACC; the Verity Sense has PPG, ACC,
#: PPI, gyroscope, magnetometer and SDK mode).
FEATURES = {
    "h10": pmd.encode_features({pmd.MEAS_ECG, pmd.MEAS_ACC}),
    "verity": pmd.encode_features({pmd.MEAS_PPG, pmd.MEAS_ACC, pmd.MEAS_PPI, pmd.MEAS_GYRO,
                                   pmd.MEAS_MAG}, sdk_mode=True),
}
NAMES = {"h10": "Polar H10 EMU0001", "verity": "Polar Sense EMU0001"}
_STATUS_ALREADY = 6
_STATUS_INVALID_RESOLUTION = 7
_STATUS_INVALID_RATE = 8
_STATUS_INVALID_RANGE = 9
_STATUS_INVALID_STATE = 12
#: 2026-01-01T00:00:00Z on Polar's clock (s since 2000-01-01): the default device time.
CLOCK_2026_S = 820_454_400.0


@dataclass(frozen=True)
class PolarConfig:
    """How the emulated device behaves.

    ``model`` is ``"h10"`` or ``"verity"``. ``speed`` is the multiple of real time (None: as
    fast as the stack goes). ``loss`` is the share of data notifications lost on the air
    (realised share within about one notification); ``disconnect_every`` drops the link
    after every this many. While the link is down the device clock runs on: at a set speed
    by the loop's clock, at max speed by ``reconnect_gap_s`` of device time per drop (there
    is no real time to follow), and those samples are lost. ``compressed`` None sends the
    model's frames (H10 raw, Verity Sense delta). ``clock_start_s`` is the device time of
    the recording's first sample (s since 2000-01-01). ``start_status`` forces the status
    of every START reply from the ``start_status_from``-th on (0: decide as a device does;
    2: a device that refuses to start again after a reconnect); ``cp_value_len`` caps each
    control-point indication (None: the link's MTU − 3), so replies span several.
    """

    model: str = "h10"
    name: str | None = None
    address: str | None = None
    speed: float | None = 1.0
    loss: float = 0.0
    seed: int = 0
    disconnect_every: int = 0
    compressed: bool | None = None
    reconnect_gap_s: float = 0.5
    clock_start_s: float = CLOCK_2026_S
    start_status: int = 0
    start_status_from: int = 1
    cp_value_len: int | None = None


@dataclass(frozen=True)
class PolarH10Config(PolarConfig):
    """An emulated Polar H10 (``monitor --emulate FILE --device polar-h10``)."""

    model: str = "h10"


@dataclass(frozen=True)
class PolarVerityConfig(PolarConfig):
    """An emulated Polar Verity Sense (``monitor --emulate FILE --device polar-verity``)."""

    model: str = "verity"


@dataclass
class PolarStats:
    """What the device did (truth for tests). Samples are counted at the started rate.

    ``samples_lost_detectable`` are the lost samples a later delivered frame's stamp reveals
    (samples lost after the last delivered frame cannot be seen by any host)."""

    frames_produced: int = 0
    frames_sent: int = 0
    frames_lost: int = 0
    samples_produced: int = 0
    samples_sent: int = 0
    samples_lost: int = 0
    samples_lost_detectable: int = 0
    dropped_random: int = 0
    disconnects: int = 0
    connections: int = 0
    measurements: int = 0  # STARTs accepted
    factor: float = 1.0
    fs_hz: float = 0.0
    commands: list[bytes] = field(default_factory=list)

    @property
    def loss_fraction(self) -> float:
        return self.samples_lost / self.samples_produced if self.samples_produced else 0.0


def device_units(acc_g: np.ndarray, fs_hz: float, to_hz: float, range_g: int,
                 factor: float) -> np.ndarray:
    """The recording's acceleration (n, 3) g at ``fs_hz`` as the device's integer samples at
    ``to_hz``: resampled, clipped to ±``range_g`` and rounded to units of ``factor`` mG."""
    x = np.asarray(acc_g, dtype=np.float64)
    if np.isnan(x).any():  # lost samples of a replayed log: hold each axis's median
        x = np.where(np.isnan(x), np.nanmedian(x, axis=0), x)
        x = np.nan_to_num(x)
    y = resample(x, fs_hz, to_hz) * 1000.0
    y = np.clip(y, -range_g * 1000.0, range_g * 1000.0) / factor
    return np.clip(np.round(y), -32768, 32767).astype(np.int64)


class EmulatedPolar(EmulatedPeripheral):
    """A Polar H10 or Verity Sense on ``air`` whose accelerometer carries ``recording``.

    ``await dev.start()`` powers it on and advertises; :attr:`finished` is set when the
    recording has been sent to its end.
    """

    def __init__(self, air: VirtualAir, recording: Recording, config: PolarConfig | None = None):
        self.air = air
        self.cfg = cfg = config or PolarConfig()
        if cfg.model not in OFFERS:
            raise ValueError(f"model must be one of {', '.join(OFFERS)}, not {cfg.model!r}")
        if not 0.0 <= cfg.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {cfg.loss}")
        if recording.acc_g is None or not recording.fs_acc_hz:
            raise RecordingError(f"{recording.name or 'the recording'} has no accelerometer; "
                                 f"a Polar device streams acceleration only")
        self.recording = recording
        self.name = cfg.name or NAMES[cfg.model]
        self.compressed = cfg.compressed if cfg.compressed is not None else cfg.model == "verity"
        self.stats = PolarStats()
        self.finished = asyncio.Event()
        self.address = cfg.address or air.new_address(0xA0)
        self.device, self._controller = air.new_device(self.name, self.address)
        self._loss = SeededLoss(self.cfg.loss, self.cfg.seed)
        self._conn: Connection | None = None
        self._sdk_mode = False
        self._live = False
        self._starts = 0  # STARTs accepted so far (start_status_from counts them)
        self._task: asyncio.Task[None] | None = None
        self._units: np.ndarray | None = None  # served samples at the started settings
        self._settings: tuple[int, int, float] | None = None  # (rate Hz, range g, factor)
        self._served: dict[tuple[int, int, float], np.ndarray] = {}
        # resample for the model's usual START now: a device answers START at once, and
        # resampling (the first scipy.signal import) can take seconds of the event loop
        self._served_at(int(OFFERS[cfg.model][0][pmd.SETTING_SAMPLE_RATE][-1]), 8)
        self._cursor = 0  # next sample to measure
        self._stopped_at: float | None = None  # loop time the measurement stopped (link drop)
        self._pending_lost = 0  # lost samples no delivered frame has revealed yet
        self._cp_lock = asyncio.Lock()
        self._cp_tasks: set[asyncio.Task[None]] = set()
        self._build_gatt()

    # -- GATT -----------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        self._data = Characteristic(pmd.DATA_UUID, Characteristic.Properties.NOTIFY,
                                    Characteristic.READABLE, b"")
        self._cp = Characteristic(
            pmd.CONTROL_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE
            | Characteristic.Properties.INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda _c: FEATURES[self.cfg.model], write=self._on_write),
        )
        self.device.add_service(Service(pmd.SERVICE_UUID, [self._cp, self._data]))
        # as the devices do: their name and the heart-rate service (0x180D) in the
        # advertisement; the PMD service is found in GATT once connected
        self.device.advertising_data = bytes(AdvertisingData([
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, UUID(0x180D).to_bytes()),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
        ]))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    def _on_connection(self, conn: Connection) -> None:
        self._cp_lock = asyncio.Lock()  # replies of an earlier link are not waited for
        super()._on_connection(conn)

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._end_live_run()  # an online measurement ends with its link
            self._sdk_mode = False
            for task in self._cp_tasks:  # indications that will never be confirmed
                task.cancel()

    def _indicate(self, values: list[bytes]) -> None:
        conn = self._conn
        if conn is None:
            return

        lock = self._cp_lock

        async def send() -> None:
            async with lock:  # replies leave in the order the commands came
                for v in values:
                    if self._conn is not conn:
                        return
                    try:
                        await self.device.indicate_subscriber(conn, self._cp, v)
                    except (TimeoutError, ConnectionError, core.BaseBumbleError) as exc:
                        logger.debug("emulated Polar: indication not confirmed (%s)", exc)
                        return

        task = asyncio.get_running_loop().create_task(send())
        self._cp_tasks.add(task)
        task.add_done_callback(self._cp_tasks.discard)

    def _reply(self, op: int, meas: int, status: int, params: bytes = b"") -> None:
        conn = self._conn
        room = self.cfg.cp_value_len or ((conn.att_mtu if conn is not None else 23) - 3)
        self._indicate(pmd.encode_cp_response(op, meas, status, params, room))

    def _on_write(self, conn: Connection, value: bytes) -> None:
        value = bytes(value)
        self.stats.commands.append(value)
        try:
            cmd = pmd.decode_command(value)
        except RecordingError:
            self._reply(value[0] if value else 0, value[1] if len(value) > 1 else 0, 4)
            return
        if cmd.recording_type:  # offline recording is not emulated
            self._reply(cmd.op, value[1], 3)
        elif cmd.op == pmd.OP_GET_SETTINGS:
            self._get_settings(cmd)
        elif cmd.op == pmd.OP_START:
            self._start(conn, cmd)
        elif cmd.op == pmd.OP_STOP:
            self._stop(cmd)
        else:
            self._reply(cmd.op, cmd.measurement, 1)  # invalid op code

    def _offer(self) -> dict[int, tuple[float, ...]]:
        normal, sdk = OFFERS[self.cfg.model]
        return sdk if self._sdk_mode and sdk is not None else normal

    def _get_settings(self, cmd: pmd.CpCommand) -> None:
        if cmd.measurement != pmd.MEAS_ACC:
            self._reply(cmd.op, cmd.measurement, 3)  # only the accelerometer is emulated
            return
        self._reply(cmd.op, cmd.measurement, 0, pmd.encode_settings(self._offer()))

    def _start(self, conn: Connection, cmd: pmd.CpCommand) -> None:
        if cmd.measurement == pmd.MEAS_SDK_MODE and OFFERS[self.cfg.model][1] is not None:
            status = _STATUS_ALREADY if self._sdk_mode else (
                _STATUS_INVALID_STATE if self._live else 0)
            self._sdk_mode = self._sdk_mode or status == 0
            self._reply(cmd.op, cmd.measurement, status)
            return
        if cmd.measurement != pmd.MEAS_ACC:
            self._reply(cmd.op, cmd.measurement, 3)
            return
        offer = self._offer()
        s = cmd.settings
        rate = int(s.get(pmd.SETTING_SAMPLE_RATE, (0,))[0])
        rng = int(s.get(pmd.SETTING_RANGE, (0,))[0])
        res = int(s.get(pmd.SETTING_RESOLUTION, (0,))[0])
        if self._live:
            status = _STATUS_ALREADY
        elif conn.att_mtu < pmd.MIN_MTU:
            status = pmd.STATUS_INVALID_MTU
        elif rate not in offer[pmd.SETTING_SAMPLE_RATE]:
            status = _STATUS_INVALID_RATE
        elif rng not in offer[pmd.SETTING_RANGE]:
            status = _STATUS_INVALID_RANGE
        elif res not in offer[pmd.SETTING_RESOLUTION]:
            status = _STATUS_INVALID_RESOLUTION
        else:
            self._starts += 1
            status = self.cfg.start_status if self._starts >= self.cfg.start_status_from else 0
        if status:
            self._reply(cmd.op, cmd.measurement, status)
            return
        factor = self._factor(rng)
        self._reply(cmd.op, cmd.measurement, 0,
                    pmd.encode_settings({pmd.SETTING_FACTOR: (factor,)}))
        self._start_measurement(rate, rng, factor)

    def _stop(self, cmd: pmd.CpCommand) -> None:
        if cmd.measurement == pmd.MEAS_SDK_MODE:
            status = 0 if self._sdk_mode else _STATUS_ALREADY
            self._sdk_mode = False
        else:
            status = 0 if self._live else _STATUS_ALREADY
            self._end_live_run()
        self._reply(cmd.op, cmd.measurement, status)

    # -- lifecycle ------------------------------------------------------------------------
    def _halt(self) -> None:
        self._end_live_run()

    def _factor(self, range_g: int) -> float:
        """FACTOR of the START reply: mG per unit of compressed samples (1 for raw frames)."""
        return range_g * 1000.0 / 32768.0 if self.compressed else 1.0

    def _served_at(self, rate: int, range_g: int) -> np.ndarray:
        key = (rate, range_g, self._factor(range_g))
        if key not in self._served:
            rec = self.recording
            self._served[key] = device_units(rec.acc_g, float(rec.fs_acc_hz or 0), rate,
                                             range_g, key[2])
        return self._served[key]

    def _start_measurement(self, rate: int, range_g: int, factor: float) -> None:
        key = (rate, range_g, factor)
        if self._settings != key:
            if self._settings is not None:  # new settings: the device time maps anew
                self._cursor = round(self._cursor * rate / self._settings[0])
            self._units = self._served_at(rate, range_g)
            self._settings = key
        self.stats.factor, self.stats.fs_hz = factor, float(rate)
        self._live = True
        self.stats.measurements += 1
        loop = asyncio.get_running_loop()
        if self._stopped_at is not None:
            # the device clock ran on while the link was down: those samples are gone
            down_s = (self.cfg.reconnect_gap_s if self.cfg.speed is None
                      else (loop.time() - self._stopped_at) * self.cfg.speed)
            self._skip(round(down_s * rate))
        self._stopped_at = None
        self._task = loop.create_task(self._run())

    def _skip(self, samples: int) -> None:
        assert self._units is not None
        samples = max(0, min(samples, len(self._units) - self._cursor))
        self._cursor += samples
        self.stats.samples_produced += samples
        self.stats.samples_lost += samples
        self._pending_lost += samples

    # -- streaming ------------------------------------------------------------------------
    def _frames(self, start: int, value_len: int):
        """``(first sample, samples, bytes)`` of every frame from sample ``start`` on,
        encoded a few seconds at a time; stamps on the device clock."""
        assert self._units is not None
        fs = self.stats.fs_hz
        clock0_ns = round(self.cfg.clock_start_s * 1e9)
        chunk = max(256, int(4 * fs))
        i = start
        while i < len(self._units):
            part = self._units[i: i + chunk]
            frames = pmd.encode_acc_frames(part, fs, clock0_ns + round(i * 1e9 / fs), value_len,
                                           compressed=self.compressed)
            ends = [j for j, _ in frames[1:]] + [len(part)]
            for (j, data), end in zip(frames, ends, strict=True):
                yield i + j, end - j, data
            i += len(part)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        speed = self.cfg.speed
        start = self._cursor
        fs = self.stats.fs_hz
        t0 = loop.time()
        conn = self._conn
        if conn is None:
            return
        for first, n, data in self._frames(start, conn.att_mtu - 3):
            if speed is not None:
                delay = t0 + (first + n - start) / fs / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not self._live or self._conn is None:
                return
            self._cursor = first + n
            st = self.stats
            st.frames_produced += 1
            st.samples_produced += n
            if self._loss.lose():
                st.dropped_random += 1
                st.frames_lost += 1
                st.samples_lost += n
                self._pending_lost += n
            else:
                await self.device.notify_subscriber(self._conn, self._data, data)
                st.frames_sent += 1
                st.samples_sent += n
                st.samples_lost_detectable += self._pending_lost
                self._pending_lost = 0
                if speed is None:
                    await asyncio.sleep(0)
            every = self.cfg.disconnect_every
            if every and (st.frames_sent + st.dropped_random) % every == 0:
                await self.drop_link()
                return
        self._live = False
        self._task = None
        self._indicate([bytes([pmd.CP_ONLINE_MEASUREMENT_STOPPED, pmd.MEAS_ACC])])
        self.finished.set()
