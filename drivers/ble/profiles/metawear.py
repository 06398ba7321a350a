"""MbientLab MetaWear / MetaMotion protocol, accelerometer part (Bosch BMI160 and BMI270).

Pure byte layouts (encoders for the emulated board, decoders for the host), no radio. Source:
MetaWear C++ SDK (``mbientlab/MetaWear-SDK-Cpp``): ``impl/cpp/metawearboard.cpp`` (module
discovery), ``sensor/cpp/accelerometer_bosch.cpp`` and ``accelerometer_bosch_register.h``
(config, subscribe, start/stop), ``impl/cpp/datainterpreter.cpp`` (units).

* Messages ``[module][register][data]`` on the command characteristic (write without
  response); replies and data on the notify characteristic. Bit 7 of the register = read.
* Init: the SDK reads register 0 of every module (:data:`DISCOVERY_MODULES`) and waits for
  each reply ``[id, 0x80, implementation, revision, extra...]`` (2 bytes = module absent).
  The accelerometer's implementation says which IMU it is (1 = BMI160, 4 = BMI270).
* Data ``[03 04 x y z]`` int16 LE, or packed ``[03 1C]`` (BMI270 ``[03 05]``) + 3 samples.
* **No device time and no counter when streaming**: loss cannot be detected
  (:attr:`MetaWearAccDecoder.loss_measurable` is False; blocks carry ``lost_samples=None``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.profiles.wearable import AccBlock
from toetwitch.drivers.errors import RecordingError

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"
#: Device Information Service characteristics read during init (firmware, model, hardware,
#: manufacturer, serial).
DIS_UUIDS = ("00002a26-0000-1000-8000-00805f9b34fb", "00002a24-0000-1000-8000-00805f9b34fb",
             "00002a27-0000-1000-8000-00805f9b34fb", "00002a29-0000-1000-8000-00805f9b34fb",
             "00002a25-0000-1000-8000-00805f9b34fb")
MAX_PACKET_BYTES = 20

READ = 0x80
MODULE_ACCELEROMETER = 0x03
MODULE_SETTINGS = 0x11
#: Modules in the order the SDK's MODULE_DISCOVERY_CMDS reads them: switch, LED, accelerometer,
#: temperature, GPIO, NeoPixel, iBeacon, haptic, data processor, event, logging, timer, I2C,
#: macro, conductance, settings, barometer, gyro, ambient light, magnetometer, humidity,
#: colour detector, proximity, sensor fusion, debug.
DISCOVERY_MODULES = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
                     0x0D, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFE)

IMPL_BMI160 = 1
IMPL_BMI270 = 4
IMU_NAMES = {IMPL_BMI160: "BMI160", IMPL_BMI270: "BMI270"}

# accelerometer registers
REG_POWER_MODE = 0x01  # start [1] / stop [0]
REG_DATA_INTERRUPT_ENABLE = 0x02  # enable [01 00] / disable [00 01]
REG_DATA_CONFIG = 0x03  # [acc_conf][acc_range]
REG_DATA = 0x04  # data notifications; subscribe [1] / unsubscribe [0]
PACKED_REG = {IMPL_BMI160: 0x1C, IMPL_BMI270: 0x05}

#: Output data rates; ODR code = index + 1 (0x08 = 100 Hz, 0x0C = 1600 Hz).
ACC_ODR_HZ = (0.78125, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
#: Range code per ±g for each IMU.
RANGE_CODES = {IMPL_BMI160: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},
               IMPL_BMI270: {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03}}
#: int16 LSB per g at each range.
LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
_SAMPLE = struct.Struct("<hhh")


# --------------------------------------------------------------------------------------------
# module discovery
# --------------------------------------------------------------------------------------------
def discovery_command(module_id: int) -> bytes:
    """Read of a module's info register."""
    return bytes([module_id, READ])


def discovery_commands() -> list[bytes]:
    return [discovery_command(m) for m in DISCOVERY_MODULES]


@dataclass(frozen=True)
class ModuleInfo:
    module_id: int
    implementation: int | None  # None: module absent
    revision: int = 0
    extra: bytes = b""

    @property
    def present(self) -> bool:
        return self.implementation is not None


def encode_module_info(info: ModuleInfo) -> bytes:
    """The board's reply to a discovery read (2 bytes when the module is absent)."""
    head = bytes([info.module_id, READ])
    if info.implementation is None:
        return head
    return head + bytes([info.implementation, info.revision]) + info.extra


def decode_module_info(value: bytes) -> ModuleInfo:
    if len(value) < 2 or value[1] != READ:
        raise RecordingError(f"{value.hex(' ')!r} is not a MetaWear module-info reply",
                             where="MetaWear discovery")
    if len(value) == 2:
        return ModuleInfo(value[0], None)
    return ModuleInfo(value[0], value[2], value[3] if len(value) > 3 else 0, bytes(value[4:]))


# --------------------------------------------------------------------------------------------
# accelerometer commands
# --------------------------------------------------------------------------------------------
def _check_impl(implementation: int) -> None:
    if implementation not in IMU_NAMES:
        raise RecordingError(f"accelerometer implementation {implementation} is neither BMI160 "
                             f"(1) nor BMI270 (4)", where="MetaWear discovery")


def acc_config_command(implementation: int, odr_hz: float, range_g: int) -> bytes:
    """``[03 03 acc_conf acc_range]``: acc_conf = ODR code | bwp << 4 | us << 7 with bwp = 2
    (normal filter) and us = 0 on the BMI160, 1 on the BMI270 (100 Hz: ``0x28`` / ``0xA8``).
    Rates below 12.5 Hz (which need under-sampling settings) are not offered."""
    _check_impl(implementation)
    if odr_hz not in ACC_ODR_HZ or odr_hz < 12.5:
        raise ValueError(f"ODR {odr_hz} Hz is not one of {ACC_ODR_HZ[4:]}")
    if range_g not in LSB_PER_G:
        raise ValueError(f"range ±{range_g} g is not one of {tuple(LSB_PER_G)}")
    us = 1 if implementation == IMPL_BMI270 else 0
    conf = (ACC_ODR_HZ.index(odr_hz) + 1) | (2 << 4) | (us << 7)
    return bytes([MODULE_ACCELEROMETER, REG_DATA_CONFIG, conf,
                  RANGE_CODES[implementation][range_g]])


def decode_acc_config(implementation: int, value: bytes) -> tuple[float, int]:
    """(ODR Hz, range ±g) from a config write (what an emulated board receives)."""
    _check_impl(implementation)
    if len(value) != 4 or value[:2] != bytes([MODULE_ACCELEROMETER, REG_DATA_CONFIG]):
        raise RecordingError(f"{value.hex(' ')!r} is not an accelerometer config write",
                             where="MetaWear command")
    code = value[2] & 0x0F
    ranges = {c: g for g, c in RANGE_CODES[implementation].items()}
    if not 1 <= code <= len(ACC_ODR_HZ) or value[3] not in ranges:
        raise RecordingError(f"config {value.hex(' ')!r} has an unknown rate or range code",
                             where="MetaWear command")
    return ACC_ODR_HZ[code - 1], ranges[value[3]]


def data_register(implementation: int, packed: bool) -> int:
    return PACKED_REG[implementation] if packed else REG_DATA


def subscribe_command(implementation: int, packed: bool = False) -> bytes:
    return bytes([MODULE_ACCELEROMETER, data_register(implementation, packed), 0x01])


def unsubscribe_command(implementation: int, packed: bool = False) -> bytes:
    return bytes([MODULE_ACCELEROMETER, data_register(implementation, packed), 0x00])


def enable_sampling_command() -> bytes:
    return bytes([MODULE_ACCELEROMETER, REG_DATA_INTERRUPT_ENABLE, 0x01, 0x00])


def disable_sampling_command() -> bytes:
    return bytes([MODULE_ACCELEROMETER, REG_DATA_INTERRUPT_ENABLE, 0x00, 0x01])


def start_command() -> bytes:
    """``[03 01 01]`` (both IMUs with the filter settings :func:`acc_config_command` writes)."""
    return bytes([MODULE_ACCELEROMETER, REG_POWER_MODE, 0x01])


def stop_command() -> bytes:
    return bytes([MODULE_ACCELEROMETER, REG_POWER_MODE, 0x00])


def start_sequence(implementation: int, odr_hz: float, range_g: int,
                   packed: bool = False) -> list[bytes]:
    """SDK order: config, subscribe, enable sampling, start."""
    return [acc_config_command(implementation, odr_hz, range_g),
            subscribe_command(implementation, packed), enable_sampling_command(), start_command()]


def stop_sequence(implementation: int, packed: bool = False) -> list[bytes]:
    """SDK order: stop, disable sampling, unsubscribe."""
    return [stop_command(), disable_sampling_command(), unsubscribe_command(implementation, packed)]


def connection_parameters_command(min_interval_ms: float, max_interval_ms: float,
                                  latency: int = 0, timeout_ms: float = 6000.0) -> bytes:
    """Settings ``[11 09 min max latency timeout]``, u16 LE each: intervals in 1.25 ms units,
    supervision timeout in 10 ms units (mbientlab's advice for fast streaming: 7.5 ms)."""
    vals = (round(min_interval_ms / 1.25), round(max_interval_ms / 1.25), latency,
            round(timeout_ms / 10))
    return bytes([MODULE_SETTINGS, 0x09]) + struct.pack("<4H", *vals)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def encode_acc_notifications(raw: NDArray[np.int64], implementation: int,
                             packed: bool = False) -> list[bytes]:
    """int16 samples (n, 3) → notifications: one per sample, or three per packed one (n must
    then be a multiple of 3)."""
    x = np.asarray(raw, np.int64).reshape(-1, 3)
    if len(x) and (x.min() < -32768 or x.max() > 32767):
        raise ValueError("sample outside int16")
    head = bytes([MODULE_ACCELEROMETER, data_register(implementation, packed)])
    per = 3 if packed else 1
    if len(x) % per:
        raise ValueError("packed data needs a multiple of 3 samples")
    return [head + x[i: i + per].astype("<i2").tobytes() for i in range(0, len(x), per)]


def decode_acc_notification(value: bytes, implementation: int, range_g: int) -> NDArray[np.float64]:
    """One data notification → acc in g, shape (1, 3) or (3, 3) for packed data."""
    regs = (REG_DATA, PACKED_REG[implementation])
    if len(value) < 2 or value[0] != MODULE_ACCELEROMETER or value[1] not in regs:
        raise RecordingError(f"{value[:2].hex(' ')!r} is not accelerometer data",
                             where="MetaWear data")
    body = value[2:]
    if len(body) % _SAMPLE.size or not body:
        raise RecordingError(f"accelerometer data of {len(body)} bytes is not whole 6-byte "
                             f"samples", where="MetaWear data")
    return np.frombuffer(body, "<i2").astype(np.float64).reshape(-1, 3) / LSB_PER_G[range_g]


class MetaWearAccDecoder:
    """Data notifications → :class:`AccBlock` s in g. Streaming carries no device time and no
    counter, so ``t_device_s`` is None (host arrival times are all there is) and
    ``lost_samples`` None: loss is unmeasurable, and a summary must say so rather than 0."""

    loss_measurable = False
    lost_samples = None

    def __init__(self, implementation: int, range_g: int) -> None:
        _check_impl(implementation)
        if range_g not in LSB_PER_G:
            raise ValueError(f"range ±{range_g} g is not one of {tuple(LSB_PER_G)}")
        self.implementation = implementation
        self.range_g = range_g

    def push(self, value: bytes) -> AccBlock:
        return AccBlock(decode_acc_notification(value, self.implementation, self.range_g), None, None)
