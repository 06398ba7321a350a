"""An emulated Movesense sensor with the GATT SensorData Protocol, serving any recording's
accelerometer on a :class:`VirtualAir`.

It follows the public protocol (Movesense GD-77 and the ``gatt_sensordata_app`` sample; see
:mod:`toetwitch.drivers.ble.profiles.movesense_gsp` and docs/wearables.md):

* GATT: the GSP service with its write characteristic (write, write without response) and
  notify characteristic; ATT MTU up to :attr:`MovesenseConfig.mtu` (158, as the sensor).
* HELLO -> ``[1, ref, "Hello"]``; SUBSCRIBE ``/Meas/Acc/<rate>`` -> COMMAND_RESULT with a u16
  little-endian status (200; ``subscribe_status`` makes it refuse, None is the older
  firmware that answers a success with data only; another path -> 404); UNSUBSCRIBE -> 200.
* Acc messages: u32 ms stamp (sensor clock) of the first sample, then n x (x, y, z) float32
  m/s^2, n growing with the rate (8 at 104 Hz, :func:`samples_per_message`); split into DATA +
  DATA_PART2 when longer than the negotiated MTU - 3.
* The sample firmware unsubscribes all on disconnect: after a reconnect nothing streams until
  the host subscribes again. The sensor clock runs on meanwhile: at a finite ``speed`` the
  samples of the time the link was down are measured but never sent (lost); at ``speed=None``
  no time passes while the link is down.

The advertisement says ``Movesense 000000EMU`` with the 16-bit UUID 0xFDF3 (one of the two
reported for Movesense); the GSP service is found by GATT discovery, as on the sensor.
:attr:`EmulatedMovesense.stats` is the truth the host's accounting is checked against (which
sample ranges were lost, and why).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from toetwitch.drivers.ble.emulator.backend import VirtualAir
from toetwitch.drivers.ble.emulator.peripheral import EmulatedPeripheral, SeededLoss
from toetwitch.drivers.ble.emulator.wearable import advertisement, recording_acc_g
from toetwitch.drivers.ble.profiles import movesense_gsp as gsp
from toetwitch.drivers.ble.profiles.wearable import STANDARD_GRAVITY_MS2
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")


def samples_per_message(rate_hz: int, max_value_len: int) -> int:
    """Samples in one Acc message: rate / 13 (8 at 104 Hz, as the sample client shows),
    capped so that the message fits in DATA + DATA_PART2."""
    cap = (2 * max_value_len - 2 - gsp.ACC_HEAD.size) // gsp.SAMPLE_BYTES
    return max(1, min(round(rate_hz / 13), cap))


@dataclass(frozen=True)
class MovesenseConfig:
    """How the emulated sensor behaves.

    ``speed``: multiple of real time (None: as fast as the stack goes). ``loss``: share of
    notifications lost on the air (seeded by ``seed``; a lost DATA or DATA_PART2 loses its
    message). ``disconnect_every``: drop the link after every this many notifications.
    ``mtu``: the largest ATT MTU the sensor accepts. ``subscribe_status``: the status of the
    reply to a subscription (200; an error status refuses it; None: no reply, data only).
    ``per_message``: samples per message (None: :func:`samples_per_message`).
    ``clock_start_ms``: the sensor clock at the first subscription.
    """

    name: str = "Movesense 000000EMU"
    address: str | None = None
    speed: float | None = 1.0
    loss: float = 0.0
    seed: int = 0
    disconnect_every: int = 0
    mtu: int = 158
    subscribe_status: int | None = 200
    per_message: int | None = None
    clock_start_ms: int = 3_600_000


@dataclass
class MovesenseStats:
    """What the sensor did (truth for tests). Sample indices count from the first sample of
    the first subscription, at the subscribed rate."""

    rate_hz: int | None = None
    samples_produced: int = 0  # measured while subscribed (sent, lost on air, or link down)
    samples_sent: int = 0  # in messages whose every part went out
    samples_lost: int = 0
    lost_ranges: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of lost samples
    messages: int = 0
    messages_split: int = 0  # sent as DATA + DATA_PART2
    notifications: int = 0
    dropped_random: int = 0
    disconnects: int = 0
    connections: int = 0
    subscriptions: int = 0
    commands: list[bytes] = field(default_factory=list)

    def lost_mask(self, n: int) -> np.ndarray:
        """(n,) bool: which of the first ``n`` samples were lost."""
        mask = np.zeros(n, bool)
        for a, b in self.lost_ranges:
            mask[a:b] = True
        return mask


class EmulatedMovesense(EmulatedPeripheral):
    """A Movesense on ``air`` whose accelerometer measures ``recording``.

    ``await sensor.start()`` powers it on and advertises; :attr:`finished` is set when the
    recording has been sent to its end.
    """

    def __init__(self, air: VirtualAir, recording: Recording, config: MovesenseConfig | None = None):
        self.air = air
        self.cfg = cfg = config or MovesenseConfig()
        self.recording = recording
        # resampled at the host's default rate now (it also says why a recording cannot be
        # served): not inside the subscription's write callback, which must answer at once
        self._acc_by_rate = {104: self._float32_ms2(104)}
        self._loss = SeededLoss(cfg.loss, cfg.seed)
        self.stats = MovesenseStats()
        self.finished = asyncio.Event()
        self.address = cfg.address or air.new_address(0xD4)
        self.device, self._controller = air.new_device(cfg.name, self.address)
        self.device.gatt_server.max_mtu = cfg.mtu
        self._conn: Connection | None = None
        self._acc_ms2: np.ndarray | None = None  # float32 m/s^2 at the subscribed rate
        self._rate: int | None = None
        self._ref: int | None = None  # the live subscription
        self._cursor = 0  # next sample to measure
        self._t0: float | None = None  # loop time of sample 0 (finite speed)
        self._task: asyncio.Task[None] | None = None
        self._build_gatt()

    # -- GATT -----------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        self._notify_char = Characteristic(gsp.NOTIFY_UUID, Characteristic.Properties.NOTIFY,
                                           Characteristic.READABLE, b"")
        write = Characteristic(
            gsp.WRITE_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        self.device.add_service(Service(gsp.SERVICE_UUID, [write, self._notify_char]))
        self.device.advertising_data, self.device.scan_response_data = advertisement(
            self.cfg.name, uuid16=(0xFDF3,))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._unsubscribe()  # the sample firmware unsubscribes all on disconnect

    def _notify(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None:
            asyncio.get_running_loop().create_task(
                self.device.notify_subscriber(conn, self._notify_char, data))

    def _on_write(self, _conn: Connection, value: bytes) -> None:
        value = bytes(value)
        self.stats.commands.append(value)
        try:
            cmd = gsp.decode_command(value)
        except RecordingError:
            logger.info("emulated Movesense: ignored the write %s", value.hex(" "))
            return
        if cmd.cmd == gsp.CMD_HELLO:
            self._notify(gsp.hello_reply(cmd.ref))
        elif cmd.cmd == gsp.CMD_SUBSCRIBE:
            self._subscribe(cmd.ref, cmd.path)
        elif cmd.cmd == gsp.CMD_UNSUBSCRIBE:
            if self._ref == cmd.ref:
                self._unsubscribe()
            self._notify(gsp.encode_command_result(cmd.ref, 200))
        else:
            self._notify(gsp.encode_command_result(cmd.ref, 400))

    # -- subscriptions --------------------------------------------------------------------
    def _subscribe(self, ref: int, path: str) -> None:
        try:
            rate = gsp.rate_from_path(path)
        except RecordingError:
            self._notify(gsp.encode_command_result(ref, 404))
            return
        status = self.cfg.subscribe_status
        if status is not None:
            self._notify(gsp.encode_command_result(ref, status))
            if not 200 <= status < 300:
                return
        self._unsubscribe()
        if rate != self._rate:
            if self._rate is not None:  # the same instant of the recording at the new rate
                self._cursor = round(self._cursor * rate / self._rate)
            self._rate = self.stats.rate_hz = rate
            if rate not in self._acc_by_rate:
                self._acc_by_rate[rate] = self._float32_ms2(rate)
            self._acc_ms2 = self._acc_by_rate[rate]
            self._t0 = None
        loop = asyncio.get_running_loop()
        speed = self.cfg.speed
        if speed is not None:
            if self._t0 is None:
                self._t0 = loop.time() - self._cursor / rate / speed
            else:  # the clock ran on while nothing was subscribed: those samples are gone
                due = int((loop.time() - self._t0) * rate * speed)
                self._lose_range(self._cursor, due)
        self._ref = ref
        self.stats.subscriptions += 1
        self._task = loop.create_task(self._run(ref))

    def _float32_ms2(self, rate: int) -> np.ndarray:
        """The recording at ``rate`` as the sensor sends it: float32 m/s^2."""
        return (recording_acc_g(self.recording, float(rate)) * STANDARD_GRAVITY_MS2).astype("<f4")

    def _unsubscribe(self) -> None:
        self._ref = None
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    def _lose_range(self, start: int, end: int) -> None:
        assert self._acc_ms2 is not None
        end = min(end, len(self._acc_ms2))
        if end <= start:
            return
        self.stats.lost_ranges.append((start, end))
        self.stats.samples_lost += end - start
        self.stats.samples_produced += end - start
        self._cursor = end

    # -- lifecycle ------------------------------------------------------------------------
    def _halt(self) -> None:
        self._unsubscribe()

    # -- streaming ------------------------------------------------------------------------
    def _stamp_ms(self, i: int) -> int:
        assert self._rate is not None
        return self.cfg.clock_start_ms + round(i * 1000 / self._rate)

    async def _run(self, ref: int) -> None:
        assert self._acc_ms2 is not None and self._rate is not None
        loop = asyncio.get_running_loop()
        acc, rate, speed = self._acc_ms2, self._rate, self.cfg.speed
        while self._cursor < len(acc):
            conn = self._conn
            if conn is None or self._ref != ref:
                return
            max_len = conn.att_mtu - 3
            i = self._cursor
            end = min(len(acc), i + (self.cfg.per_message or samples_per_message(rate, max_len)))
            if speed is not None and self._t0 is not None:
                delay = self._t0 + end / rate / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if self._conn is not conn or self._ref != ref:
                        return
            parts = gsp.split_message(gsp.encode_acc_message(ref, self._stamp_ms(i), acc[i:end]),
                                      max_len)
            whole = True
            for part in parts:
                if self._loss.lose():
                    self.stats.dropped_random += 1
                    whole = False
                    continue
                await self.device.notify_subscriber(conn, self._notify_char, part)
                self.stats.notifications += 1
            self.stats.messages += 1
            self.stats.messages_split += len(parts) > 1
            if whole:
                self.stats.samples_produced += end - i
                self.stats.samples_sent += end - i
                self._cursor = end
            else:
                self._lose_range(i, end)
            if speed is None:
                await asyncio.sleep(0)
            every = self.cfg.disconnect_every
            if every and (self.stats.notifications + self.stats.dropped_random) % every < len(parts) \
                    and self._cursor < len(acc):
                await self.drop_link()
                return
        self.finished.set()
