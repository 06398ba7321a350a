"""A virtual foot sensor serving profile v1 from any recording, on a :class:`VirtualAir`.

It advertises the profile's service, serves the Info characteristic, obeys the control
point and notifies MTU-filled packets exactly as firmware should (docs/protocol.md), paced
at ``speed`` times real time (or as fast as the stack goes). Test knobs: seeded random
packet loss and forced disconnects. Its own :attr:`EmulatedSensor.stats` say what it did,
so tests can check the host's accounting against the truth.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bumble import att
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from toetwitch.drivers.ble import profile_v1 as pv1
from toetwitch.drivers.ble.codec import (
    decode_samples,
    encode_data_packet,
    encode_packet,
    encode_samples,
    next_packet,
    status_end_payloads,
)
from toetwitch.drivers.ble.emulator.backend import VirtualAir, advertise, power_down
from toetwitch.drivers.ble.emulator.peripheral import EmulatedPeripheral, SeededLoss
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")

#: Integer scales tried (finest first) before falling back to float samples.
_EMG_SCALES_UV = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001)
_ACC_SCALES_G = (1e-3, 5e-4, 2.5e-4, 1e-4, 1e-5, 1e-6)
_INT_RANGE = {"i16": (1 << 15) - 1, "i24": (1 << 23) - 1}


@dataclass(frozen=True)
class SensorConfig:
    """How the emulated sensor behaves.

    Parameters
    ----------
    name : str
        Advertised local name.
    speed : float or None
        Multiple of real time; None streams as fast as the BLE stack carries packets.
    loss : float
        Share (0..1) of data packets lost on the air: which ones is random (seeded by
        ``seed``), and the realised share stays within about one packet of ``loss``.
    seed : int
        Seed of the loss draws.
    disconnect_after : tuple of int
        Drop the link (reason 0x08, supervision timeout) right after the data packet with
        this ``seq`` was sent; the sensor keeps sampling.
    disconnect_every : int
        Also drop the link after every this many packets (0 = never).
    lost_on_disconnect : int
        At ``speed=None`` time does not pass while the link is down, so this many packets
        are counted as produced-but-lost per forced disconnect (at real speeds, whatever
        falls due while the link is down is lost).
    sample_format : str
        ``"auto"`` picks a format that carries the recording bit-exactly (i16 when its
        values are exact multiples of a scale, else f32 or f64); or force one of
        :data:`toetwitch.drivers.ble.profile_v1.SAMPLE_FORMATS`.
    clock_ppm : float
        Device clock error in ppm (the host estimates it).
    """

    name: str = "TT-EMU"
    address: str | None = None
    speed: float | None = 1.0
    loss: float = 0.0
    seed: int = 0
    disconnect_after: tuple[int, ...] = ()
    disconnect_every: int = 0
    lost_on_disconnect: int = 0
    sample_format: str = "auto"
    clock_hz: float = 1_000_000.0
    clock_ppm: float = 0.0
    boot_id: int = 1


@dataclass
class SensorStats:
    """What the sensor did (truth for tests): packets are counted by ``seq``."""

    produced: int = 0  # seq numbers used (data + status)
    sent: int = 0  # notifications handed to the stack
    dropped_random: int = 0
    dropped_link_down: int = 0
    disconnects: int = 0
    connections: int = 0
    starts: list[int] = field(default_factory=list)  # START modes received

    @property
    def lost(self) -> int:
        return self.dropped_random + self.dropped_link_down


def choose_format(values: np.ndarray, kind: str, channels: int) -> tuple[str, float]:
    """The smallest sample format (and coarsest scale) that carries ``values`` bit-exactly.

    Tries i16 then i24 over decimal scales, then f32, then f64 (always exact).
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, channels)
    finite = x[np.isfinite(x)]
    peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    probe = x[: 20000]  # cheap rejection on a prefix before checking everything
    for fmt in ("i16", "i24"):
        for scale in _EMG_SCALES_UV if kind == "emg" else _ACC_SCALES_G:
            if peak / scale >= _INT_RANGE[fmt]:
                continue
            st = pv1.StreamInfo(0, kind, channels, 1.0, fmt, scale)
            if all(
                np.array_equal(decode_samples(encode_samples(v, st)[0], st), v, equal_nan=True)
                for v in (probe, x)
            ):
                return fmt, scale
    if np.array_equal(x.astype(np.float32).astype(np.float64), x, equal_nan=True):
        return "f32", 1.0
    return "f64", 1.0


class EmulatedSensor(EmulatedPeripheral):
    """A profile-v1 peripheral on ``air`` streaming ``recording``.

    Use ``await sensor.start()`` (power on, advertise), then connect to it with bleak and
    the :mod:`~toetwitch.drivers.ble.emulator.backend`; ``await sensor.stop()`` at the end.
    :attr:`finished` is set once the END status packet has been sent.
    """

    def __init__(self, air: VirtualAir, recording: Recording, config: SensorConfig | None = None):
        self.air = air
        self.rec = recording
        self.cfg = config or SensorConfig()
        if not 0.0 <= self.cfg.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.cfg.loss}")
        self.stats = SensorStats()
        self.finished = asyncio.Event()
        self._arrays: dict[int, np.ndarray] = {}
        streams = []
        if recording.emg_uv is not None:
            streams.append(self._stream(pv1.STREAM_EMG, "emg", recording.emg_uv[:, None],
                                        float(recording.fs_emg_hz or 0)))
        if recording.acc_g is not None:
            streams.append(self._stream(pv1.STREAM_ACC, "acc", recording.acc_g,
                                        float(recording.fs_acc_hz or 0)))
        # start_time is sent even when unknown (null): the host must not invent one from
        # its own clock for a recording that is being replayed
        extra: dict[str, Any] = {"recording": recording.name, "start_time": recording.start_time}
        self.info = pv1.DeviceInfo(
            streams=tuple(streams),
            clock_hz=self.cfg.clock_hz,
            boot_id=self.cfg.boot_id,
            firmware="emulator",
            model="toetwitch emulated sensor",
            extra=extra,
        )
        self.info_bytes = pv1.encode_info(self.info)
        self.address = self.cfg.address or air.new_address(0xD0)
        self.device, self._controller = air.new_device(self.cfg.name, self.address)
        self._loss = SeededLoss(self.cfg.loss, self.cfg.seed)
        self._conn: Connection | None = None
        self._streaming = False  # START received and not stopped
        self._link_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending_skip = 0
        self.error: Exception | None = None
        self._reset_session()
        self._build_gatt()

    def _stream(self, sid: int, kind: str, values: np.ndarray, fs: float) -> pv1.StreamInfo:
        values = np.asarray(values, dtype=np.float64)
        fmt, scale = (
            choose_format(values, kind, values.shape[1])
            if self.cfg.sample_format == "auto"
            else (self.cfg.sample_format, 0.1 if kind == "emg" else 1e-3)
        )
        if fmt in ("f32", "f64") and self.cfg.sample_format != "auto":
            scale = 1.0
        self._arrays[sid] = values
        return pv1.StreamInfo(sid, kind, values.shape[1], fs, fmt, scale)

    def _reset_session(self) -> None:
        self._seq = 0
        self._next = {s.stream_id: 0 for s in self.info.streams}
        self._first_packet = True
        self._t0_loop: float | None = None

    # -- GATT -----------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        self._data_char = Characteristic(
            pv1.DATA_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        info_char = Characteristic(
            pv1.INFO_UUID,
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            CharacteristicValue(read=lambda _conn: self.info_bytes),
        )
        control_char = Characteristic(
            pv1.CONTROL_UUID,
            Characteristic.Properties.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_control),
        )
        self.device.add_service(Service(pv1.SERVICE_UUID, [info_char, control_char,
                                                           self._data_char]))
        advertise(self.device, self.cfg.name, pv1.SERVICE_UUID)
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._streaming = False  # after a drop the host must send START (resume) again
            self._link_up.clear()

    def _on_control(self, conn: Connection, value: bytes) -> None:
        try:
            cmd = pv1.parse_command(value)
        except ValueError as exc:
            logger.debug("emulated sensor refused a command: %s", exc)
            raise att.ATT_Error(0x80, message=str(exc)) from None  # application error
        if cmd.opcode == pv1.OP_START:
            self.stats.starts.append(cmd.mode)
            if cmd.mode == pv1.START_NEW or self._task is None:
                if self._task is not None:
                    self._task.cancel()
                self._reset_session()
                self._task = asyncio.get_running_loop().create_task(self._run())
            self._streaming = True
            self._link_up.set()
        elif cmd.opcode == pv1.OP_STOP:
            self._streaming = False
            self._link_up.clear()
        # SET_RATE: the emulator serves the recording at its own rates; accepted, ignored.

    # -- lifecycle ------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop streaming, drop any link and power off."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await power_down(self.device, self._conn, self.air, self._controller)

    def _link_dropped(self) -> None:
        self._pending_skip += self.cfg.lost_on_disconnect

    # -- streaming ------------------------------------------------------------------------

    def _ticks(self, index: int, fs: float) -> int:
        return round(index / fs * self.cfg.clock_hz * (1.0 + self.cfg.clock_ppm * 1e-6))

    async def _run(self) -> None:
        try:
            await self._produce()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sensor fault must show, not vanish in a task
            logger.error("the emulated sensor stopped: %s", exc)
            self.error = exc
            raise

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        speed = self.cfg.speed
        mtu = 247
        while True:
            if self._conn is not None:
                mtu = self._conn.att_mtu
            nxt = next_packet(self.info.streams, self._next, self._arrays, mtu)
            if nxt is None:
                break
            st, i, n, ready = nxt
            if speed is not None:
                if self._t0_loop is None:
                    self._t0_loop = loop.time()
                delay = self._t0_loop + ready / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif not (self._streaming and self._conn is not None):
                await self._link_up.wait()  # virtual time stands still while the link is down
            packet = encode_data_packet(
                st, self._seq, i, self._ticks(i, st.fs_hz), self._arrays[st.stream_id][i : i + n],
                self._first_packet,
            )
            seq = self._seq
            self._seq += 1
            self._next[st.stream_id] = i + n
            self._first_packet = False
            self.stats.produced += 1
            if self._pending_skip > 0:
                self._pending_skip -= 1
                self.stats.dropped_link_down += 1
                continue
            conn = self._conn
            if conn is None or not self._streaming:
                self.stats.dropped_link_down += 1
                continue
            if self._loss.lose():
                self.stats.dropped_random += 1
            else:
                await self.device.notify_subscriber(conn, self._data_char, packet)
                self.stats.sent += 1
                if speed is None:
                    await asyncio.sleep(0)  # let the stack deliver: bounded queues, fair loop
            every = self.cfg.disconnect_every
            if seq in self.cfg.disconnect_after or (every and seq % every == every - 1):
                await self.drop_link()
        await self._send_end()

    async def _send_end(self) -> None:
        """The END status packet says where every stream ended, so tail losses are exact.

        It is sent reliably (re-sent on each new link until it goes out)."""
        while True:
            if self._conn is not None and self._streaming:
                for payload in status_end_payloads(self._next, self._conn.att_mtu):
                    end = encode_packet(pv1.STREAM_STATUS, self._seq, 0, 0, payload)
                    self._seq += 1
                    self.stats.produced += 1
                    await self.device.notify_subscriber(self._conn, self._data_char, end)
                    self.stats.sent += 1
                self.finished.set()
                return
            await self._link_up.wait()
            await asyncio.sleep(0)
