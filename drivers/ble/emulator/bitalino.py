"""An emulated BITalino (r)evolution BLE board on a :class:`VirtualAir`, serving any recording.

It follows the public firmware (MCU ``firmware-bitalino-revolution`` behind the BT121 bridge
``firmware-BT121``): the bridge's GATT table (Commands: write with response, read, indicate;
Frames: notify); one-byte commands (version ``BITalino_v5.2\\n``, state record, rate, start
live with a channel mask, stop with 0x00 or 0xFF, digital/PWM outputs accepted); live
frames with the 4-bit sequence and CRC-4; rate and start accepted only when idle; and the
bridge's **0xFF on disconnect**, which stops acquisition, so that after a reconnect the host
must set the rate and start again and the sequence restarts at 0.

How the bridge cuts the UART byte stream into notifications is not verified on hardware,
so ``pack`` chooses: ``"pair"`` (default: at 1000 Hz the firmware transmits after every
even-sequence frame, so frames leave in pairs), ``"frame"`` (one frame per notification) or
``"bytes20"`` (20-byte notifications, frames straddling them).

The recording is resampled to the board's 1000 Hz (polyphase, ``scipy.signal.resample_poly``)
and quantised through the inverse PLUX transfer functions to the ADC resolution of each
port's slot. Ports whose stream the recording lacks sit at rest (EMG mid-scale, acc_x/acc_y
0 g, acc_z +1 g: a board lying flat). Test knobs: seeded notification loss, forced
disconnects. :attr:`EmulatedBitalino.stats` is the truth the host's accounting is checked
against (frames produced, sent whole, lost).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from toetwitch.drivers.ble.emulator.backend import VirtualAir, advertise
from toetwitch.drivers.ble.emulator.peripheral import EmulatedPeripheral, SeededLoss
from toetwitch.drivers.ble.profiles import bitalino as bit
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")

PACKINGS = ("pair", "frame", "bytes20")
#: Resting value of a port whose stream the recording lacks (physical units).
_REST = {"emg": 0.0, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0, "other": 0.0}


@dataclass(frozen=True)
class BitalinoConfig:
    """How the emulated board behaves.

    ``wiring`` is the port -> stream map of the emulated board (what sensor sits on which
    port; default :data:`bit.DEFAULT_CHANNELS`, the map ``monitor --device bitalino``
    assumes). ``speed`` is the multiple of real time (None: as fast as the stack goes; no
    time then passes while the link is down). ``loss`` is the share of notifications lost
    on the air (realised share within about one notification). ``disconnect_every`` drops
    the link after every this many notifications.
    """

    name: str = "BITalino-EMU"
    address: str | None = None
    wiring: dict[str, str] = field(default_factory=lambda: dict(bit.DEFAULT_CHANNELS))
    speed: float | None = 1.0
    loss: float = 0.0
    seed: int = 0
    pack: str = "pair"
    disconnect_every: int = 0
    version: str = "5.2"
    battery_raw: int = 600


@dataclass
class BitalinoStats:
    """What the board did (truth for tests). Frames are counted by acquisition order."""

    frames_produced: int = 0
    frames_sent: int = 0  # every byte of the frame went out
    frames_lost: int = 0  # at least one byte in a lost notification, or link down
    notifications: int = 0
    dropped_random: int = 0
    disconnects: int = 0
    connections: int = 0
    acquisitions: int = 0
    commands: list[int] = field(default_factory=list)

    @property
    def loss_fraction(self) -> float:
        return self.frames_lost / self.frames_produced if self.frames_produced else 0.0


def resample(x: np.ndarray, fs_hz: float, to_hz: float) -> np.ndarray:
    """Polyphase resampling along axis 0 (the rational ratio nearest ``to_hz / fs_hz``)."""
    if fs_hz == to_hz:
        return np.asarray(x, dtype=np.float64)
    from scipy.signal import resample_poly

    r = Fraction(to_hz / fs_hz).limit_denominator(1000)
    x = np.asarray(x, dtype=np.float64)
    x = np.where(np.isnan(x), 0.0, x)  # lost samples of a replayed log become rest values
    return resample_poly(x, r.numerator, r.denominator, axis=0)


def board_adc(rec: Recording, wiring: dict[str, str], fs_hz: float = 1000.0) -> np.ndarray:
    """What each wired port's ADC reads, (n frames, ports in ascending order), int, at the
    slot resolution (10 bit for the first four active channels, 6 bit after)."""
    settings = bit.BitalinoSettings(channels=dict(wiring))
    phys: dict[str, np.ndarray] = {}
    if rec.emg_uv is not None:
        phys["emg"] = resample(rec.emg_uv, float(rec.fs_emg_hz or 0), fs_hz)
    if rec.acc_g is not None:
        acc = resample(rec.acc_g, float(rec.fs_acc_hz or 0), fs_hz)
        phys.update({"acc_x": acc[:, 0], "acc_y": acc[:, 1], "acc_z": acc[:, 2]})
    n = max((len(v) for v in phys.values()), default=0)
    cols = []
    for port, bits in settings.bits.items():
        stream = settings.channels[port]
        v = phys.get(stream)
        x = np.full(n, _REST[stream])
        if v is not None:
            x[: len(v)] = v
        if stream == "emg":
            cols.append(bit.emg_adc(x, bits, settings.vcc_v, settings.emg_gain))
        elif stream.startswith("acc"):
            cols.append(bit.acc_adc(x, bits, settings.cmin(stream), settings.cmax(stream)))
        else:
            cols.append(np.full(n, 1 << (bits - 1), dtype=np.int32))
    return np.stack(cols, axis=1)


class EmulatedBitalino(EmulatedPeripheral):
    """A BITalino (r)evolution BLE on ``air`` whose analog ports carry ``recording``.

    ``await board.start()`` powers it on and advertises; :attr:`finished` is set when the
    recording has been sent to its end (a real board never ends: the host stops it).
    """

    def __init__(self, air: VirtualAir, recording: Recording, config: BitalinoConfig | None = None):
        self.air = air
        self.cfg = cfg = config or BitalinoConfig()
        if cfg.pack not in PACKINGS:
            raise ValueError(f"pack must be one of {PACKINGS}, not {cfg.pack!r}")
        if not 0.0 <= cfg.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {cfg.loss}")
        self.wiring = dict(cfg.wiring)
        self.adc = board_adc(recording, self.wiring)  # 10-bit/6-bit values per wired port
        self.ports = list(bit.BitalinoSettings(channels=self.wiring).channels)
        self.stats = BitalinoStats()
        self.finished = asyncio.Event()
        self.address = cfg.address or air.new_address(0xD2)
        self.device, self._controller = air.new_device(cfg.name, self.address)
        self._loss = SeededLoss(self.cfg.loss, self.cfg.seed)
        self._conn: Connection | None = None
        self._live = False
        self._mask = 0
        self._rate_hz = 1000.0  # the board's power-on default
        self._pwm_next = False
        self._outputs = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._cursor = 0  # next recording frame to acquire
        self._stopped_at: float | None = None  # loop time acquisition stopped (link drop)
        self._build_gatt()

    # -- GATT -----------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        self._frames = Characteristic(bit.FRAMES_UUID, Characteristic.Properties.READ
                                      | Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
        commands = Characteristic(
            bit.COMMANDS_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.READ
            | Characteristic.Properties.INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda _c: b"", write=self._on_command),
        )
        self.device.add_service(Service(bit.SERVICE_UUID, [commands, self._frames]))
        advertise(self.device, self.cfg.name, bit.SERVICE_UUID)
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._command(bit.CMD_STOP_IF_LIVE)  # what the BT121 bridge writes to the MCU

    def _notify(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None:
            asyncio.get_running_loop().create_task(
                self.device.notify_subscriber(conn, self._frames, data))

    def _on_command(self, _conn: Connection, value: bytes) -> None:
        for byte in bytes(value):  # the bridge forwards the bytes one after the other
            self._command(byte)

    def _command(self, c: int) -> None:
        self.stats.commands.append(c)
        if self._pwm_next:  # the byte after 0xA3 is the PWM duty value
            self._pwm_next = False
            return
        if c == 0xA3:
            self._pwm_next = True
        elif c & 0xF3 == 0xB3:
            self._outputs = ((c >> 2) & 1, (c >> 3) & 1)
        elif self._live:
            if c in (bit.CMD_STOP, bit.CMD_STOP_IF_LIVE):
                self._end_live_run()
            # only stop and output commands are honoured during acquisition
        elif c in (0x07, 0x0F):
            self._notify(bit.version_reply(self.cfg.version))
        elif c == bit.CMD_STATE:
            i = min(self._cursor, len(self.adc) - 1)
            analog = [512] * 6
            for k, port in enumerate(self.ports):
                analog[bit.PORTS.index(port)] = int(self.adc[i, k]) if len(self.adc) else 512
            self._notify(bit.state_reply(tuple(analog), self.cfg.battery_raw, 0,
                                         0 if self.cfg.version >= "5.2" else None,
                                         (0, 0, *self._outputs)))
        elif c & 0x03 == 0x03 and c >> 6 < 4 and c & 0x3C == 0:
            self._rate_hz = bit.RATES_HZ[c >> 6]
        elif c & 0x03 == 0x01:
            self._start_acquisition(c >> 2)
        elif c & 0x03 == 0x02:
            logger.info("emulated BITalino: simulated mode is not emulated; ignored")
        # c & 0x03 == 0: battery threshold; 0xFF when idle: ignored

    # -- lifecycle ------------------------------------------------------------------------
    def _halt(self) -> None:
        self._end_live_run()

    def _start_acquisition(self, mask: int) -> None:
        wired = bit.channel_mask(self.ports)
        if mask != wired:
            logger.warning("emulated BITalino: host asked for mask %s, the board is wired as %s",
                           bin(mask), bin(wired))
        self._mask = mask
        self._live = True
        self.stats.acquisitions += 1
        loop = asyncio.get_running_loop()
        if self._stopped_at is not None and self.cfg.speed is not None:
            # real time went on while the board was stopped: that part of the recording is gone
            missed = round((loop.time() - self._stopped_at) * self.cfg.speed * self._rate_hz)
            self._skip(missed)
        self._stopped_at = None
        self._task = loop.create_task(self._run())

    def _skip(self, frames: int) -> None:
        frames = max(0, min(frames, len(self.adc) - self._cursor))
        self._cursor += frames
        self.stats.frames_produced += frames
        self.stats.frames_lost += frames

    # -- streaming ------------------------------------------------------------------------
    def _chunks(self, start: int):
        """Yield ``(frames in it (first, last), bytes)`` notifications of one acquisition
        from recording frame ``start``; ``first``/``last`` are recording frame indices."""
        n_frames = len(self.adc)
        pack = self.cfg.pack
        per = 2 if pack == "pair" else 1
        size = bit.frame_size(len(self.ports))
        seq = 0
        buf = bytearray()
        owners: list[int] = []  # recording frame of each byte in buf
        i = start
        while i < n_frames:
            k = min(per, n_frames - i)
            for j in range(i, i + k):
                buf += bit.encode_frame([int(v) for v in self.adc[j]], seq, (0, 0, *self._outputs))
                owners += [j] * size
                seq += 1
            i += k
            if pack == "bytes20":
                while len(buf) >= 20 or (i >= n_frames and buf):
                    yield owners[:20], bytes(buf[:20])
                    del buf[:20], owners[:20]
            else:
                yield owners, bytes(buf)
                buf, owners = bytearray(), []

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        speed = self.cfg.speed
        start = self._cursor
        t0 = loop.time()
        sent_whole: dict[int, int] = {}
        size = bit.frame_size(len(self.ports))
        try:
            for owners, data in self._chunks(start):
                last = owners[-1]
                if speed is not None:
                    delay = t0 + (last + 1 - start) / self._rate_hz / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if not self._live or self._conn is None:
                    return
                newly = sorted(set(owners) - set(sent_whole))
                self._cursor = last + 1
                self.stats.frames_produced += len(newly)
                for j in newly:
                    sent_whole[j] = 0
                if self._loss.lose():
                    self.stats.dropped_random += 1
                    for j in set(owners):
                        sent_whole[j] = -(1 << 30)  # a byte of it never arrives
                else:
                    await self.device.notify_subscriber(self._conn, self._frames, data)
                    self.stats.notifications += 1
                    for j in owners:
                        sent_whole[j] += 1
                    if speed is None:
                        await asyncio.sleep(0)
                for j in [j for j in sent_whole if j < owners[0]]:
                    self._settle(sent_whole.pop(j), size)
                every = self.cfg.disconnect_every
                if every and (self.stats.notifications + self.stats.dropped_random) % every == 0:
                    for j in list(sent_whole):
                        if j <= last:
                            self._settle(sent_whole.pop(j), size)
                    await self.drop_link()
                    return
            for j in list(sent_whole):
                self._settle(sent_whole.pop(j), size)
            self.finished.set()
        finally:
            for j in list(sent_whole):  # acquisition stopped mid-frame
                self._settle(sent_whole.pop(j), size)

    def _settle(self, sent_bytes: int, size: int) -> None:
        if sent_bytes == size:
            self.stats.frames_sent += 1
        else:
            self.stats.frames_lost += 1
