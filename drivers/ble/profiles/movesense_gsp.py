"""Movesense GATT SensorData Protocol (GSP), accelerometer part.

Pure byte layouts (encoders for the emulated sensor, decoders for the host), no radio. Sources:
Movesense "GATT SensorData Protocol specification" (GD-77 v1.0) and the device library's
``samples/gatt_sensordata_app`` (``GATTSensorDataClient.cpp``, ``python_client``), API YAML
``meas/acc.yaml``.

* Write ``[cmd][ref ≠ 0][data]``: HELLO 0, SUBSCRIBE 1 (data = resource path in ASCII, no NUL,
  e.g. ``/Meas/Acc/104``), UNSUBSCRIBE 2 (the subscription's ref).
* Notify ``[type][ref][...]``: COMMAND_RESULT 1, DATA 2, DATA_PART2 3. A message longer than one
  notification is sent as DATA then DATA_PART2; the host appends the second minus its 2-byte
  header. Losing either part loses the batch.
* Acc payload: u32 LE timestamp in ms (sensor clock) of the FIRST sample, then n × (x, y, z)
  float32 in m/s². No sequence number: loss shows only as a timestamp step larger than the
  previous batch spans (:class:`MovesenseAccDecoder`).
* The COMMAND_RESULT status byte order differs between firmware (the sample sends ``01 FB`` =
  507 read big-endian); this module writes and reads a u16 LITTLE-endian HTTP-style status at
  offset 2, as newer clients do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.profiles.wearable import (
    STANDARD_GRAVITY_MS2,
    AccBlock,
    samples_lost_from_gap,
)
from toetwitch.drivers.errors import RecordingError

SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

CMD_HELLO, CMD_SUBSCRIBE, CMD_UNSUBSCRIBE = 0, 1, 2
RESP_COMMAND_RESULT, RESP_DATA, RESP_DATA_PART2 = 1, 2, 3
#: Acc rates the sensor accepts (acc.yaml).
ACC_RATES_HZ = (13, 26, 52, 104, 208, 416, 833, 1666)
#: Bytes before the samples of a reassembled Acc message: type, ref, u32 timestamp.
ACC_HEAD = struct.Struct("<BBI")
SAMPLE_BYTES = 12  # 3 × float32
_MS_MOD = 1 << 32


def acc_path(rate_hz: int) -> str:
    """The subscription path for the accelerometer at ``rate_hz`` (one of :data:`ACC_RATES_HZ`)."""
    if rate_hz not in ACC_RATES_HZ:
        raise ValueError(f"Movesense Acc rate {rate_hz} Hz is not one of {ACC_RATES_HZ}")
    return f"/Meas/Acc/{rate_hz}"


def rate_from_path(path: str) -> int:
    """The rate of an ``/Meas/Acc/<rate>`` path; :class:`RecordingError` for anything else."""
    head, _, rate = path.rpartition("/")
    if head != "/Meas/Acc" or not rate.isdigit() or int(rate) not in ACC_RATES_HZ:
        raise RecordingError(f"{path!r} is not a Movesense accelerometer path", where="GSP command")
    return int(rate)


def _ref(ref: int) -> int:
    if not 1 <= ref <= 255:
        raise ValueError("GSP reference must be 1..255")
    return ref


def hello_command(ref: int) -> bytes:
    return bytes([CMD_HELLO, _ref(ref)])


def subscribe_command(ref: int, path: str) -> bytes:
    return bytes([CMD_SUBSCRIBE, _ref(ref)]) + path.encode("ascii")


def unsubscribe_command(ref: int) -> bytes:
    return bytes([CMD_UNSUBSCRIBE, _ref(ref)])


@dataclass(frozen=True)
class GspCommand:
    cmd: int
    ref: int
    data: bytes

    @property
    def path(self) -> str:
        return self.data.decode("ascii", errors="replace")


def decode_command(value: bytes) -> GspCommand:
    """Parse a write (what an emulated sensor receives)."""
    if len(value) < 2 or value[1] == 0:
        raise RecordingError(f"GSP command {value.hex(' ')!r} lacks a non-zero reference",
                             where="GSP command")
    return GspCommand(value[0], value[1], bytes(value[2:]))


def hello_reply(ref: int) -> bytes:
    """The sample firmware's reply to HELLO."""
    return bytes([RESP_COMMAND_RESULT, ref]) + b"Hello"


def encode_command_result(ref: int, status: int) -> bytes:
    """``[1][ref][u16 LE status]`` (200 OK, 404 not found, 507 no free slot ...)."""
    return bytes([RESP_COMMAND_RESULT, ref]) + struct.pack("<H", status)


def decode_command_result(value: bytes) -> tuple[int, int | None]:
    """(ref, status) of a COMMAND_RESULT; status None when the reply carries none (HELLO)."""
    if len(value) < 2 or value[0] != RESP_COMMAND_RESULT:
        raise RecordingError(f"{value.hex(' ')!r} is not a GSP command result", where="GSP reply")
    if len(value) == 4:
        return value[1], struct.unpack_from("<H", value, 2)[0]
    return value[1], None


# --------------------------------------------------------------------------------------------
# data messages
# --------------------------------------------------------------------------------------------
def encode_acc_message(ref: int, timestamp_ms: int, acc_ms2: NDArray[np.float64]) -> bytes:
    """A whole Acc DATA message (before any split): samples in m/s² as float32."""
    a = np.asarray(acc_ms2, "<f4").reshape(-1, 3)
    return ACC_HEAD.pack(RESP_DATA, ref, timestamp_ms % _MS_MOD) + a.tobytes()


def split_message(message: bytes, max_value_len: int) -> list[bytes]:
    """One notification, or DATA + DATA_PART2 when the message exceeds ``max_value_len``
    (ATT MTU − 3). The protocol has only two parts; longer messages are an error."""
    if len(message) <= max_value_len:
        return [message]
    rest = message[max_value_len:]
    if len(rest) + 2 > max_value_len:
        raise ValueError(f"message of {len(message)} bytes needs more than two notifications")
    return [message[:max_value_len], bytes([RESP_DATA_PART2, message[1]]) + rest]


def _acc_complete(message: bytes) -> bool:
    return len(message) >= ACC_HEAD.size and (len(message) - ACC_HEAD.size) % SAMPLE_BYTES == 0


class GspReassembler:
    """Joins DATA + DATA_PART2 into messages.

    A DATA value shorter than ``max_value_len`` that holds whole Acc samples is complete at
    once; a full-length one is held until the next value shows whether a DATA_PART2 follows
    (or :meth:`flush`). Counts ``lost_batches``: a first part whose continuation never came,
    or a DATA_PART2 without its first part.
    """

    def __init__(self, max_value_len: int | None = None) -> None:
        self.max_value_len = max_value_len
        self._held: bytes | None = None
        self.lost_batches = 0

    def _release(self) -> list[bytes]:
        held, self._held = self._held, None
        if held is None:
            return []
        if _acc_complete(held):
            return [held]
        self.lost_batches += 1
        return []

    def push(self, value: bytes) -> list[bytes]:
        """Complete messages (possibly none) after this notification value."""
        if len(value) < 2:
            raise RecordingError(f"GSP notification {value.hex(' ')!r} is shorter than 2 bytes",
                                 where="GSP data")
        kind = value[0]
        if kind == RESP_DATA_PART2:
            if self._held is None or self._held[1] != value[1]:
                out = self._release()
                self.lost_batches += 1
                return out
            msg, self._held = self._held + value[2:], None
            if not _acc_complete(msg):
                self.lost_batches += 1
                return []
            return [msg]
        out = self._release()
        if kind != RESP_DATA:
            return out  # command results are not data
        full = self.max_value_len is None or len(value) >= self.max_value_len
        if full or not _acc_complete(value):
            self._held = bytes(value)
        else:
            out.append(bytes(value))
        return out

    def flush(self) -> list[bytes]:
        return self._release()


def decode_acc_message(message: bytes) -> tuple[int, int, NDArray[np.float64]]:
    """(ref, timestamp_ms of the first sample, acc in m/s² (n, 3)) of a reassembled message."""
    if len(message) < ACC_HEAD.size or message[0] != RESP_DATA:
        raise RecordingError(f"GSP message of {len(message)} bytes is not Acc data", where="GSP data")
    if not _acc_complete(message):
        raise RecordingError(f"GSP Acc message of {len(message)} bytes does not hold whole "
                             f"{SAMPLE_BYTES}-byte samples", where="GSP data")
    _, ref, ts = ACC_HEAD.unpack_from(message)
    acc = np.frombuffer(message, "<f4", offset=ACC_HEAD.size).astype(np.float64).reshape(-1, 3)
    return ref, ts, acc


class MovesenseAccDecoder:
    """Reassembled Acc messages → :class:`AccBlock` s in g, device times and loss.

    Sample ``i`` of a message is at its stamp + i/fs (the stamp has 1-ms resolution, so times
    come from the nominal rate). Loss: the step from the previous stamp, in samples, beyond the
    previous message's count (:func:`samples_lost_from_gap`). The u32 ms clock wraps after
    49.7 days; a step that goes backwards is a ``discontinuity``.
    """

    loss_measurable = True

    def __init__(self, fs_hz: float) -> None:
        if fs_hz <= 0:
            raise ValueError("fs_hz must be positive")
        self.fs_hz = float(fs_hz)
        self._prev: tuple[int, int] | None = None  # (stamp ms, samples)
        self._wraps = 0
        self.lost_samples = 0
        self.discontinuities = 0

    def push_message(self, message: bytes) -> AccBlock:
        _, ts, acc_ms2 = decode_acc_message(message)
        n = len(acc_ms2)
        lost, disc = 0, False
        if self._prev is not None:
            pts, pn = self._prev
            step = (ts - pts) % _MS_MOD
            if step >= _MS_MOD // 2:  # went backwards: reset or reorder
                disc = True
            else:
                if ts < pts:
                    self._wraps += 1
                # stamps are whole ms: their difference is uncertain by 1 ms
                lost = samples_lost_from_gap(step * self.fs_hz / 1000.0, pn, self.fs_hz / 1000.0)
        self._prev = (ts, n)
        self.lost_samples += lost
        self.discontinuities += disc
        base_s = (ts + self._wraps * _MS_MOD) / 1000.0
        t = base_s + np.arange(n) / self.fs_hz
        return AccBlock(acc_ms2 / STANDARD_GRAVITY_MS2, t, lost, disc)
