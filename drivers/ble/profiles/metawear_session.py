"""Profile ``metawear``: an MbientLab MetaWear / MetaMotion board's accelerometer (Bosch
BMI160 or BMI270). The byte layouts are in :mod:`toetwitch.drivers.ble.profiles.metawear`;
this module is the session: handshake, settings, session description and decoder.

Handshake on every connection, in the MetaWear SDK's order (docs/wearables.md, MetaWear):
enable notifications; read the Device Information Service (firmware, model number, hardware,
manufacturer, serial) where present; module discovery (a read of register 0 of each of the
25 modules, one after the other, each awaited; the accelerometer's reply says which IMU it
is, and its revision whether packed data exists); the connection parameters for fast
streaming (7.5 ms interval); accelerometer config (ODR, range), subscribe to data (packed:
three samples per notification, where the revision allows), enable sampling, start. The stop
is the SDK's stop sequence (stop, disable sampling, unsubscribe). Commands are writes
without response, as the SDK sends them.

**No device clock, no counter.** Streamed accelerometer data carries neither, so sample
times are the sample index / ODR (the board's nominal rate), mapped to host time by the
arrival times of the notifications; a lost notification cannot be seen (the samples after it
move up), and the time the link was down after a reconnect is not known either: the session
says that loss is unmeasurable (``summary.json``: ``"loss_measurable": false``, ``lost``
null) rather than report 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toetwitch.drivers.ble.profile_v1 import DeviceInfo
from toetwitch.drivers.ble.profiles import DeviceProfile
from toetwitch.drivers.ble.profiles import metawear as mw
from toetwitch.drivers.ble.profiles.wearable import (
    ACC_DETECTS,
    AccSessionDecoder,
    acc_device_info,
    describe,
    disconnect_quietly,
    read_description,
)
from toetwitch.drivers.errors import RecordingError

logger = logging.getLogger("toetwitch")

NAME = "metawear"
#: ODRs toetwitch streams at (Hz).
RATES_HZ = (50.0, 100.0, 200.0)
#: DIS characteristic -> description key.
DIS_KEYS = dict(zip(mw.DIS_UUIDS, ("firmware", "model_number", "hardware", "manufacturer",
                                   "serial"), strict=True))
#: Accelerometer implementations the SDK knows that toetwitch does not drive.
OTHER_IMUS = {0: "MMA8452Q", 3: "BMA255"}

# the implementation and packing of each live session, for its stop sequence
_SESSIONS: weakref.WeakKeyDictionary[Any, tuple[int, bool]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class MetaWearSettings:
    """What the host asks of a MetaWear.

    Parameters
    ----------
    odr_hz : float
        Accelerometer output data rate, 50, 100 (default) or 200 Hz.
    range_g : int
        Full scale, ±2/4/8/16 g; ±8 g by default (0.24 mg per LSB, room for knocks).
    packed : bool
        Ask for packed data (3 samples per notification) when the accelerometer's revision
        offers it: a third of the notifications at the same rate.
    connection_interval_ms : float
        Connection interval asked for (mbientlab's advice for fast streaming: 7.5 ms).
    reply_timeout_s : float
        How long to wait for each module-discovery reply.
    """

    odr_hz: float = 100.0
    range_g: int = 8
    packed: bool = True
    connection_interval_ms: float = 7.5
    reply_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if float(self.odr_hz) not in RATES_HZ:
            raise ValueError(f"MetaWear rates are {', '.join(f'{r:g}' for r in RATES_HZ)} Hz, "
                             f"not {self.odr_hz:g}")
        if self.range_g not in mw.LSB_PER_G:
            raise ValueError(f"MetaWear ranges are ±2, 4, 8 or 16 g, not {self.range_g}")


def is_data(value: bytes) -> bool:
    """Whether a notification is accelerometer data (plain or packed, either IMU)."""
    return (len(value) >= 2 and value[0] == mw.MODULE_ACCELEROMETER
            and value[1] in (mw.REG_DATA, *mw.PACKED_REG.values()))


def decoder_from_description(data: bytes, where: str = "device info") -> AccSessionDecoder:
    doc = read_description(data, where, ("odr_hz", "range_g", "implementation"))
    try:
        odr, rng, impl = float(doc["odr_hz"]), int(doc["range_g"]), int(doc["implementation"])
        dec = mw.MetaWearAccDecoder(impl, rng)
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"the metawear session description is unreadable ({exc})",
                             where=where) from None
    if odr <= 0:
        raise RecordingError("the metawear session description has no positive odr_hz", where=where)
    facts = {k: v for k, v in doc.items() if k != "profile"}
    model = f"MetaWear ({mw.IMU_NAMES[impl]})"
    info = acc_device_info(odr, model, str(doc.get("firmware", "")), facts)
    return AccSessionDecoder(lambda v: [dec.push(v)], info, loss_measurable=False,
                             samples_per_packet=3.0 if doc.get("packed") else 1.0)


def _info_from_description(data: bytes) -> DeviceInfo:
    return decoder_from_description(data).info


# -- the handshake -------------------------------------------------------------------------
def _link_failed(message: str) -> Exception:
    from toetwitch.drivers.ble.client import LinkFailedError  # the client imports this package

    return LinkFailedError(message)


async def _read_dis(client: Any) -> dict[str, str]:
    """The Device Information strings the board offers (a refused read is skipped: they
    describe the board, decoding does not need them)."""
    from bleak.exc import BleakError

    out: dict[str, str] = {}
    for uuid, key in DIS_KEYS.items():
        char = client.services.get_characteristic(uuid)
        if char is None or "read" not in char.properties:
            continue
        try:
            value = bytes(await client.read_gatt_char(char))
        except BleakError as exc:
            logger.info("MetaWear device information %s not read: %s", key, exc)
            continue
        out[key] = value.decode("utf-8", "replace").strip("\0 ")
    return out


async def open_session(client: Any, profile: DeviceProfile, deliver: Callable[[bytes], None],
                       first: bool) -> bytes | None:
    """Device information, module discovery, connection parameters, accelerometer config,
    subscribe, enable, start (see module doc). Returns the session description on the
    first connection."""
    st: MetaWearSettings = profile.settings or MetaWearSettings()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    def on_notify(_sender: Any, data: bytearray) -> None:
        value = bytes(data)
        if is_data(value):
            deliver(value)
        else:
            replies.put_nowait(value)

    async def write(cmd: bytes) -> None:
        await client.write_gatt_char(mw.COMMAND_UUID, cmd, response=False)

    async def module_info(module_id: int) -> mw.ModuleInfo:
        async def wait() -> mw.ModuleInfo:
            while True:
                value = await replies.get()
                if value[:2] == bytes([module_id, mw.READ]):
                    return mw.decode_module_info(value)

        try:
            return await asyncio.wait_for(wait(), st.reply_timeout_s)
        except TimeoutError:
            if not first:
                raise  # the link retries the handshake
            await disconnect_quietly(client)
            raise _link_failed(f"the MetaWear did not answer module discovery (module "
                               f"0x{module_id:02x}) within {st.reply_timeout_s:g} s") from None

    await client.start_notify(mw.NOTIFY_UUID, on_notify)
    dis = await _read_dis(client)
    modules: dict[int, mw.ModuleInfo] = {}
    for cmd in mw.discovery_commands():
        await write(cmd)
        modules[cmd[0]] = await module_info(cmd[0])
    acc = modules[mw.MODULE_ACCELEROMETER]
    if not acc.present or acc.implementation not in mw.IMU_NAMES:
        await disconnect_quietly(client)
        what = ("reports no accelerometer" if not acc.present else
                f"has the {OTHER_IMUS.get(acc.implementation or 0, 'unknown')} accelerometer "
                f"(implementation {acc.implementation}); toetwitch drives the BMI160 and BMI270")
        raise _link_failed(f"this MetaWear board {what}")
    impl = int(acc.implementation or 0)
    packed = st.packed and acc.revision >= 1  # SDK: packed acceleration needs revision 1
    if modules[mw.MODULE_SETTINGS].present:
        iv = st.connection_interval_ms
        await write(mw.connection_parameters_command(iv, iv, 0, 6000.0))
    for cmd in mw.start_sequence(impl, float(st.odr_hz), st.range_g, packed):
        await write(cmd)
    _SESSIONS[client] = (impl, packed)
    if not first:
        return None
    present = {f"0x{m:02x}": [i.implementation, i.revision] for m, i in modules.items() if i.present}
    return describe(NAME, odr_hz=float(st.odr_hz), range_g=st.range_g, implementation=impl,
                    imu=mw.IMU_NAMES[impl], acc_revision=acc.revision, packed=packed,
                    modules=present, name=getattr(client, "name", None) or "",
                    address=getattr(client, "address", "") or "", **dis)


async def close_session(client: Any, profile: DeviceProfile) -> None:
    """The SDK's stop sequence: stop, disable sampling, unsubscribe; then notifications off."""
    impl, packed = _SESSIONS.pop(client, (mw.IMPL_BMI160, False))
    for cmd in mw.stop_sequence(impl, packed):
        await client.write_gatt_char(mw.COMMAND_UUID, cmd, response=False)
    await client.stop_notify(mw.NOTIFY_UUID)


def configured(settings: MetaWearSettings) -> DeviceProfile:
    """The profile with these settings."""
    return dataclasses.replace(PROFILE, settings=settings)


def _configure_acc(profile: DeviceProfile, rate_hz: float | None, range_g: int | None
                   ) -> DeviceProfile:
    """``monitor --acc-rate/--acc-range``: the output data rate and full scale to configure."""
    changes: dict[str, Any] = {}
    if rate_hz is not None:
        changes["odr_hz"] = float(rate_hz)
    if range_g is not None:
        changes["range_g"] = int(range_g)
    return dataclasses.replace(profile, settings=dataclasses.replace(profile.settings, **changes))


PROFILE = DeviceProfile(
    name=NAME,
    description="MbientLab MetaWear / MetaMotion board (BMI160 or BMI270 IMU): 3-axis "
                "accelerometer",
    service_uuid=mw.SERVICE_UUID,
    info_uuid=None,
    control_uuid=mw.COMMAND_UUID,
    data_uuid=mw.NOTIFY_UUID,
    parse_info=_info_from_description,
    start=lambda resume: mw.start_command(),
    stop=mw.stop_command,
    open_session=open_session,
    close_session=close_session,
    decoder_for=decoder_from_description,
    name_hint="metawear",
    settings=MetaWearSettings(),
    stream_kinds=("acc",),
    configure_acc=_configure_acc,
    streams="3-axis accelerometer (int16 at ±8 g, converted to g); no device time",
    rates="100 Hz (50 or 200 Hz possible); loss is unmeasurable (no counter, no device clock)",
    detects=ACC_DETECTS,
)
