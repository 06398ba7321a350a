"""Profiles ``polar-h10`` and ``polar-verity``: the accelerometer of a Polar H10 chest strap or
a Polar Verity Sense arm band, over Polar Measurement Data (PMD).

The byte layouts are in :mod:`toetwitch.drivers.ble.profiles.polar_pmd`; this module is the
session: what the host asks and in which order (after the Polar BLE SDK's ``BlePMDClient``,
docs/evidence.md):

1. the ATT MTU: the SDK asks for at least 232; with less, Polar devices were seen to answer
   no control-point command (polar-ble-sdk #287) or to refuse START with ``INVALID_MTU``;
2. indications on the control point (CP), notifications on the data characteristic;
3. a read of the CP: the feature bitmap (is there an accelerometer?);
4. GET_MEASUREMENT_SETTINGS for ACC: the rates, ranges and resolutions the device offers now
   (a Verity Sense offers 52 Hz only, unless SDK mode is on: 26–416 Hz);
5. START with the configured rate and range among those offered; its reply carries the
   status and FACTOR, the scale of delta-compressed samples;
6. data notifications: raw or delta-compressed ACC frames in mG, each stamped with the device
   time of its last sample (ns since 2000-01-01).

Whether the frames are raw or compressed is the device's choice (the H10 sends raw int16
frames, the Verity Sense compressed ones); the decoder reads either. There is no sequence
number: lost notifications show as a step in the stamps (:class:`polar_pmd.PolarAccDecoder`).
A device stops its measurement when the link drops and the host starts it again after the
reconnect; its clock runs on meanwhile, so the time the link was down is counted as lost
samples.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toetwitch.drivers.ble.profile_v1 import DeviceInfo
from toetwitch.drivers.ble.profiles import DeviceProfile
from toetwitch.drivers.ble.profiles import polar_pmd as pmd
from toetwitch.drivers.ble.profiles.wearable import (
    ACC_DETECTS,
    AccSessionDecoder,
    acc_device_info,
    describe,
    read_description,
)
from toetwitch.drivers.errors import RecordingError

logger = logging.getLogger("toetwitch")

#: Heart-rate service (0x180D): what a Polar strap or arm band advertises besides its name.
HEART_RATE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"

#: model key -> (profile name, model text, advertised-name hint, default ACC rate Hz)
MODELS = {
    "h10": ("polar-h10", "Polar H10", "polar h10", 200),
    "verity": ("polar-verity", "Polar Verity Sense", "polar sense", 52),
}

WHERE = "Polar control point"


@dataclass(frozen=True)
class PolarSettings:
    """What the host asks a Polar device for.

    Parameters
    ----------
    model : str
        ``"h10"`` or ``"verity"``.
    fs_hz : int or None
        Accelerometer rate; None takes the model's default (H10 200 Hz, the highest it has;
        Verity Sense 52 Hz, its rate outside SDK mode). It must be one the device offers.
    range_g : int
        Full scale, ±g (H10 2/4/8, Verity Sense 2/4/8/16 in SDK mode, 8 outside it). 8 g holds
        a kick or a stamp; a twitch is a few hundredths of a g either way.
    sdk_mode : bool or None
        Verity Sense: switch SDK mode on (rates 26–416 Hz). None: only when the rate asked for
        is not offered outside it.
    reply_timeout_s : float
        How long to wait for each control-point reply.

    (The host cannot ask for compressed or raw frames: the device decides; both decode.)
    """

    model: str = "h10"
    fs_hz: int | None = None
    range_g: int = 8
    sdk_mode: bool | None = None
    reply_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Polar model must be one of {', '.join(MODELS)}, not {self.model!r}")

    @property
    def rate_hz(self) -> int:
        return int(self.fs_hz if self.fs_hz is not None else MODELS[self.model][3])

    @property
    def model_name(self) -> str:
        return MODELS[self.model][1]


# -- decoding ------------------------------------------------------------------------------
def decoder_from_description(data: bytes, where: str = "device info") -> AccSessionDecoder:
    """The session decoder of a Polar session (see :func:`open_session`'s description)."""
    doc = read_description(data, where, ("fs_hz", "factor", "model"))
    try:
        fs_hz, factor = float(doc["fs_hz"]), float(doc["factor"])
        codec = pmd.PolarAccDecoder(fs_hz, factor)
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"the Polar session description is unreadable ({exc})",
                             where=where) from None
    facts = {k: v for k, v in doc.items() if k not in ("profile", "fs_hz", "factor", "model")}
    info = acc_device_info(fs_hz, str(doc["model"]), facts=facts)
    return AccSessionDecoder(lambda value: [codec.push(value)], info)


def _info_from_description(data: bytes) -> DeviceInfo:
    return decoder_from_description(data).info


# -- the handshake -------------------------------------------------------------------------
def _choose(offered: dict[int, tuple[float, ...]], kind: int, wanted: int, what: str,
            unit: str, model: str) -> int:
    values = [int(v) for v in offered.get(kind, ())]
    if values and wanted not in values:
        raise RecordingError(f"the {model} offers an accelerometer {what} of "
                             f"{', '.join(map(str, values))} {unit}, not {wanted}", where=WHERE)
    return wanted


async def open_session(client: Any, profile: DeviceProfile, deliver: Callable[[bytes], None],
                       first: bool) -> bytes | None:
    """MTU check, feature read, settings query, START (see the module doc); data
    notifications go to ``deliver``. Runs again after every reconnect (the device stopped
    its measurement when the link dropped). Returns the session description on the first
    connection: ``{"profile", "model", "fs_hz", "range_g", "resolution_bits", "factor",
    "sdk_mode", "mtu"}``."""
    st: PolarSettings = profile.settings or PolarSettings()
    model = st.model_name
    mtu = int(getattr(client, "mtu_size", 0) or 0)
    if mtu < pmd.MIN_MTU:
        logger.warning("the link to the %s has an ATT MTU of %d; Polar devices need at least %d "
                       "(they may not answer)", model, mtu, pmd.MIN_MTU)
    replies: asyncio.Queue[pmd.CpResponse] = asyncio.Queue()
    assembler = pmd.CpResponseAssembler()

    def on_cp(_sender: Any, value: bytearray) -> None:
        stopped = pmd.decode_measurement_stopped(bytes(value))
        if stopped is not None:
            logger.info("the %s stopped its measurement (types %s)", model, list(stopped))
            return
        try:
            resp = assembler.push(bytes(value))
        except RecordingError as exc:
            logger.warning("%s", exc)
            return
        if resp is not None:
            replies.put_nowait(resp)

    def on_data(_sender: Any, value: bytearray) -> None:
        deliver(bytes(value))

    async def command(value: bytes, what: str) -> pmd.CpResponse:
        while not replies.empty():  # a late reply to an earlier command
            replies.get_nowait()
        await client.write_gatt_char(pmd.CONTROL_UUID, value, response=True)
        try:
            while True:
                resp = await asyncio.wait_for(replies.get(), st.reply_timeout_s)
                if resp.op == value[0]:
                    return resp
        except TimeoutError:
            hint = (f"; the link's ATT MTU is {mtu}, Polar devices need at least {pmd.MIN_MTU}"
                    if mtu < pmd.MIN_MTU else "")
            text = f"the {model} did not answer {what} within {st.reply_timeout_s:g} s{hint}"
            if not first:  # after a reconnect: a link problem, the session tries again
                raise TimeoutError(text) from None
            raise RecordingError(text, where=WHERE) from None

    def failed(resp: pmd.CpResponse, what: str) -> RecordingError:
        hint = (f" (the link's ATT MTU is {mtu}; Polar devices need at least {pmd.MIN_MTU})"
                if resp.status == pmd.STATUS_INVALID_MTU else "")
        return RecordingError(f"the {model} refused {what}: {resp.status_name}{hint}", where=WHERE)

    await client.start_notify(pmd.CONTROL_UUID, on_cp)
    await client.start_notify(pmd.DATA_UUID, on_data)
    types, has_sdk_mode = pmd.decode_features(bytes(await client.read_gatt_char(pmd.CONTROL_UUID)))
    if pmd.MEAS_ACC not in types:
        raise RecordingError(f"the {model} offers no accelerometer stream (features: "
                             f"{sorted(types)})", where=WHERE)

    async def acc_settings() -> dict[int, tuple[float, ...]]:
        resp = await command(pmd.get_settings_command(pmd.MEAS_ACC), "the accelerometer settings query")
        if not resp.ok:
            raise failed(resp, "the accelerometer settings query")
        return resp.settings()

    offered = await acc_settings()
    rates = [int(v) for v in offered.get(pmd.SETTING_SAMPLE_RATE, ())]
    sdk = bool(st.sdk_mode) or (st.sdk_mode is None and rates and st.rate_hz not in rates)
    if sdk:
        if not has_sdk_mode:
            why = ("" if st.sdk_mode else f"offers an accelerometer rate of "
                   f"{', '.join(map(str, rates))} Hz, not {st.rate_hz}, and ")
            raise RecordingError(f"the {model} {why}has no SDK mode", where=WHERE)
        resp = await command(bytes([pmd.OP_START, pmd.MEAS_SDK_MODE]), "SDK mode")
        if not resp.ok and resp.status != 6:  # 6: already in SDK mode
            raise failed(resp, "SDK mode")
        offered = await acc_settings()
    fs_hz = _choose(offered, pmd.SETTING_SAMPLE_RATE, st.rate_hz, "rate", "Hz", model)
    range_g = _choose(offered, pmd.SETTING_RANGE, st.range_g, "range", "g (±)", model)
    resolutions = [int(v) for v in offered.get(pmd.SETTING_RESOLUTION, (16,))]
    resolution = 16 if 16 in resolutions else max(resolutions)
    channels = 3 if pmd.SETTING_CHANNELS in offered else None
    start = pmd.start_command(fs_hz, resolution, range_g, channels)
    resp = await command(start, "the accelerometer start")
    if resp.status == 6:  # already streaming (a host that died left it on): stop, start again
        await command(pmd.stop_command(), "the accelerometer stop")
        resp = await command(start, "the accelerometer start")
    if not resp.ok:
        raise failed(resp, f"to start the accelerometer at {fs_hz} Hz, ±{range_g} g")
    factor = resp.factor()
    if not first:
        return None
    return describe(MODELS[st.model][0], model=model, fs_hz=fs_hz, range_g=range_g,
                    resolution_bits=resolution, factor=factor, sdk_mode=bool(sdk), mtu=mtu)


async def close_session(client: Any, profile: DeviceProfile) -> None:
    """Stop the accelerometer, and SDK mode if the session switched it on (the Polar SDK's
    stop order: ``03 02`` then ``03 09``; a Verity Sense left in SDK mode keeps it until it
    is restarted), then stop the notifications."""
    st: PolarSettings = profile.settings or PolarSettings()
    await client.write_gatt_char(pmd.CONTROL_UUID, pmd.stop_command(), response=True)
    if uses_sdk_mode(st):
        await client.write_gatt_char(pmd.CONTROL_UUID, pmd.stop_command(pmd.MEAS_SDK_MODE),
                                     response=True)
    await client.stop_notify(pmd.DATA_UUID)


def uses_sdk_mode(st: PolarSettings) -> bool:
    """Whether a session with these settings runs in SDK mode: asked for, or a Verity Sense
    rate other than the 52 Hz it offers outside it (what :func:`open_session` decides from
    the device's offer)."""
    return bool(st.sdk_mode) or (st.sdk_mode is None and st.model == "verity"
                                 and st.rate_hz != MODELS["verity"][3])


# -- the profiles --------------------------------------------------------------------------


def _configure_acc(profile: DeviceProfile, rate_hz: float | None, range_g: int | None
                   ) -> DeviceProfile:
    """``monitor --acc-rate/--acc-range``: the rate and range to START with (the device
    refuses what it does not offer, and the handshake says what it offers)."""
    st: PolarSettings = profile.settings
    if rate_hz is not None and (rate_hz != int(rate_hz) or rate_hz <= 0):
        raise ValueError(f"Polar accelerometer rates are whole Hz, not {rate_hz:g}")
    changes: dict[str, Any] = {}
    if rate_hz is not None:
        changes["fs_hz"] = int(rate_hz)
    if range_g is not None:
        changes["range_g"] = int(range_g)
    return dataclasses.replace(profile, settings=dataclasses.replace(st, **changes))


def _profile(model: str, description: str, rates: str) -> DeviceProfile:
    name, _text, hint, _fs = MODELS[model]
    return DeviceProfile(
        name=name,
        description=description,
        service_uuid=pmd.SERVICE_UUID,
        info_uuid=None,
        control_uuid=pmd.CONTROL_UUID,
        data_uuid=pmd.DATA_UUID,
        parse_info=_info_from_description,
        # (open_session sends the START the device's settings allow; this is its default)
        start=lambda resume: pmd.start_command(MODELS[model][3], 16, 8,
                                               3 if model == "verity" else None),
        stop=pmd.stop_command,
        open_session=open_session,
        close_session=close_session,
        decoder_for=decoder_from_description,
        name_hint=hint,
        name_required=True,  # both devices serve the PMD service: the name tells them apart
        advertised_uuids=(HEART_RATE_UUID,),
        settings=PolarSettings(model=model),
        stream_kinds=("acc",),
        configure_acc=_configure_acc,
        streams="3-axis accelerometer (16-bit, mG, ±8 g), device-stamped",
        rates=rates,
        detects=ACC_DETECTS,
    )


POLAR_H10 = _profile("h10", "Polar H10 chest strap (PMD accelerometer), worn on the foot or "
                     "ankle", "accelerometer 200 Hz (offers 25/50/100/200 Hz)")
POLAR_VERITY = _profile("verity", "Polar Verity Sense arm band (PMD accelerometer), worn on the "
                        "foot or ankle", "accelerometer 52 Hz (26-416 Hz in SDK mode)")
PROFILES = (POLAR_H10, POLAR_VERITY)


def configured(settings: PolarSettings) -> DeviceProfile:
    """The profile of ``settings.model`` asking for ``settings``' rate and range."""
    base = POLAR_H10 if settings.model == "h10" else POLAR_VERITY
    return dataclasses.replace(base, settings=settings)
