"""Profile ``movesense``: a Movesense sensor's accelerometer over the GATT SensorData
Protocol (GSP). The byte layouts are in :mod:`toetwitch.drivers.ble.profiles.movesense_gsp`;
this module is the session: handshake, settings, session description and decoder.

Handshake on every connection (docs/wearables.md, Movesense): enable notifications on the
notify characteristic, HELLO (ref 1; the sensor answers ``[1, 1, "Hello"]``), then SUBSCRIBE
``/Meas/Acc/<rate>`` with ref :data:`ACC_REF`. Newer firmware answers the subscription with a
COMMAND_RESULT carrying an HTTP-style status; the older sample sends none and just streams, so
the first data message of the reference also counts as success. An error status (e.g. 404 for
a path the firmware lacks, 507 for no free subscription slot) ends the session with a clear
error. After a reconnect the sensor has dropped the subscription (the sample firmware
unsubscribes all on disconnect), so the handshake runs again; the sensor clock runs on, so the
time the link was down shows as a timestamp gap and is counted lost.

Each data message is ``[2][ref][u32 ms stamp of the first sample][n x 3 float32 m/s^2]``,
sent as DATA + DATA_PART2 when longer than one notification (ATT MTU - 3). The session
description records that length (``max_value_len``) so that replay reassembles as the live
session did; a reconnect's MTU arrives in the ``connected`` link event. Units: m/s^2 -> g with
standard gravity. Device time: the stamp of each message, sample i at stamp + i/fs. Loss: a
stamp step longer than the previous message spans (to within the 1 ms stamp resolution);
a lost DATA_PART2 loses its whole message, which the next stamp then shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from toetwitch.drivers.ble.profile_v1 import DeviceInfo
from toetwitch.drivers.ble.profiles import DeviceProfile
from toetwitch.drivers.ble.profiles import movesense_gsp as gsp
from toetwitch.drivers.ble.profiles.wearable import (
    ACC_DETECTS,
    AccBlock,
    AccSessionDecoder,
    acc_device_info,
    describe,
    disconnect_quietly,
    read_description,
)
from toetwitch.drivers.errors import RecordingError

NAME = "movesense"
HELLO_REF = 1
ACC_REF = 2
#: 16-bit service UUIDs reported in Movesense advertisements (reports differ: FDF3, FE06);
#: the GSP service itself is not always advertised.
ADVERTISED_UUIDS = ("0000fdf3-0000-1000-8000-00805f9b34fb", "0000fe06-0000-1000-8000-00805f9b34fb")
#: Rates toetwitch subscribes at: the sensor's rates of at least 50 Hz.
RATES_HZ = tuple(r for r in gsp.ACC_RATES_HZ if r >= 50)


@dataclass(frozen=True)
class MovesenseSettings:
    """What the host asks of a Movesense.

    Parameters
    ----------
    fs_hz : int
        Accelerometer rate, one of :data:`RATES_HZ` (52, 104, 208 ... Hz); 104 Hz by default
        (8 samples per message, one notification each).
    reply_timeout_s : float
        How long to wait for the HELLO and SUBSCRIBE replies.
    """

    fs_hz: int = 104
    reply_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.fs_hz not in RATES_HZ:
            raise ValueError(f"Movesense accelerometer rates of 50 Hz or more are "
                             f"{', '.join(map(str, RATES_HZ))} Hz, not {self.fs_hz}")

    @property
    def path(self) -> str:
        return gsp.acc_path(self.fs_hz)


def http_status(value: bytes) -> int | None:
    """The status of a COMMAND_RESULT (None: no status, as in the HELLO reply). Firmware
    differs in byte order (docs/wearables.md): little-endian is read first, big-endian when
    that is no HTTP status (the sample firmware's ``01 FB`` = 507)."""
    _ref, status = gsp.decode_command_result(value)
    if status is None or 100 <= status < 600:
        return status
    be = int.from_bytes(value[2:4], "big")
    return be if 100 <= be < 600 else status


class MovesenseSessionDecoder(AccSessionDecoder):
    """GSP notifications of one subscription -> acceleration in g, NaN where the stamps show
    loss. DATA_PART2 is joined with the negotiated value length; a reconnect's MTU (the
    ``connected`` link event) replaces it, and a message cut by the drop is counted lost."""

    def __init__(self, fs_hz: float, max_value_len: int, ref: int = ACC_REF,
                 facts: Mapping[str, Any] | None = None) -> None:
        self.ref = ref
        self.reassembler = gsp.GspReassembler(max_value_len)
        self.acc = gsp.MovesenseAccDecoder(fs_hz)
        super().__init__(self._push, acc_device_info(fs_hz, "Movesense",
                                                     str((facts or {}).get("firmware", "")), facts))

    def _push(self, value: bytes) -> list[AccBlock]:
        return [self.acc.push_message(m) for m in self.reassembler.push(value) if m[1] == self.ref]

    def link_event(self, event: Mapping[str, Any], host_time_s: float | None = None) -> None:
        mtu = event.get("mtu")
        if event.get("event") == "connected" and isinstance(mtu, int) and mtu > 3:
            self.reassembler.max_value_len = mtu - 3


def decoder_from_description(data: bytes, where: str = "device info") -> MovesenseSessionDecoder:
    doc = read_description(data, where, ("fs_hz", "max_value_len"))
    try:
        fs_hz, max_len = int(doc["fs_hz"]), int(doc["max_value_len"])
        ref = int(doc.get("ref", ACC_REF))
        if fs_hz <= 0 or max_len < 20:
            raise ValueError("fs_hz or max_value_len out of range")
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"the movesense session description is unreadable ({exc})",
                             where=where) from None
    facts = {k: v for k, v in doc.items() if k not in ("profile", "fs_hz", "max_value_len", "ref")}
    return MovesenseSessionDecoder(fs_hz, max_len, ref, facts)


def _info_from_description(data: bytes) -> DeviceInfo:
    return decoder_from_description(data).info


# -- the handshake -------------------------------------------------------------------------
def _link_failed(message: str) -> Exception:
    from toetwitch.drivers.ble.client import LinkFailedError  # the client imports this package

    return LinkFailedError(message)


async def open_session(client: Any, profile: DeviceProfile, deliver: Callable[[bytes], None],
                       first: bool) -> bytes | None:
    """HELLO, then subscribe to the accelerometer at the configured rate (see module doc).
    Returns the session description on the first connection."""
    st: MovesenseSettings = profile.settings or MovesenseSettings()
    results: asyncio.Queue[bytes] = asyncio.Queue()
    streaming = asyncio.Event()

    def on_notify(_sender: Any, data: bytearray) -> None:
        value = bytes(data)
        if value[:1] == bytes([gsp.RESP_COMMAND_RESULT]):
            results.put_nowait(value)  # replies are not data: the log keeps data only
            return
        if len(value) >= 2 and value[1] == ACC_REF:
            streaming.set()
        deliver(value)

    async def reply(ref: int, what: str) -> int | None:
        """The status of the reply to ``ref`` (None: none given, or data came instead)."""
        async def wait() -> int | None:
            while True:
                get = asyncio.ensure_future(results.get())
                waits = {get}
                if ref == ACC_REF:  # older firmware: no result, the data is the answer
                    waits.add(asyncio.ensure_future(streaming.wait()))
                done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for f in pending:
                    f.cancel()
                if get not in done:
                    return None
                value = get.result()
                if len(value) >= 2 and value[1] == ref:
                    return http_status(value)

        try:
            return await asyncio.wait_for(wait(), st.reply_timeout_s)
        except TimeoutError:
            if not first:
                raise  # the link retries the handshake
            await disconnect_quietly(client)
            raise _link_failed(
                f"the Movesense did not answer {what} within {st.reply_timeout_s:g} s: it needs "
                "firmware with the GATT SensorData Protocol (the gatt_sensordata_app sample, or "
                "a default firmware that includes it)") from None

    await client.start_notify(gsp.NOTIFY_UUID, on_notify)
    await client.write_gatt_char(gsp.WRITE_UUID, gsp.hello_command(HELLO_REF), response=True)
    await reply(HELLO_REF, "HELLO")
    await client.write_gatt_char(gsp.WRITE_UUID, gsp.subscribe_command(ACC_REF, st.path),
                                 response=True)
    status = await reply(ACC_REF, f"the subscription to {st.path}")
    if status is not None and not 200 <= status < 300:
        await disconnect_quietly(client)
        raise _link_failed(f"the Movesense refused the subscription to {st.path} "
                           f"(status {status}{_STATUS_HINTS.get(status, '')})")
    if not first:
        return None
    mtu = int(getattr(client, "mtu_size", 23) or 23)
    return describe(NAME, fs_hz=st.fs_hz, max_value_len=mtu - 3, mtu=mtu, ref=ACC_REF,
                    path=st.path, name=getattr(client, "name", None) or "",
                    address=getattr(client, "address", "") or "")


_STATUS_HINTS = {404: ": this firmware has no such resource", 400: ": bad request",
                 507: ": no free subscription slot; restart the sensor",
                 503: ": the sensor is busy"}


def configured(settings: MovesenseSettings) -> DeviceProfile:
    """The profile with these settings."""
    return dataclasses.replace(PROFILE, settings=settings)


def _configure_acc(profile: DeviceProfile, rate_hz: float | None, range_g: int | None
                   ) -> DeviceProfile:
    """``monitor --acc-rate``: the rate to subscribe at (the range is the sensor's own
    configuration, not part of the subscription)."""
    if range_g is not None:
        raise ValueError("a Movesense's accelerometer range is set on the sensor, not by "
                         "--acc-range")
    if rate_hz is None:
        return profile
    if rate_hz != int(rate_hz):
        raise ValueError(f"Movesense accelerometer rates are whole Hz, not {rate_hz:g}")
    return dataclasses.replace(profile, settings=dataclasses.replace(profile.settings,
                                                                     fs_hz=int(rate_hz)))


PROFILE = DeviceProfile(
    name=NAME,
    description="Movesense sensor with the GATT SensorData Protocol (gatt_sensordata_app "
                "firmware): 3-axis accelerometer",
    service_uuid=gsp.SERVICE_UUID,
    info_uuid=None,
    control_uuid=gsp.WRITE_UUID,
    data_uuid=gsp.NOTIFY_UUID,
    parse_info=_info_from_description,
    start=lambda resume: gsp.subscribe_command(ACC_REF, MovesenseSettings().path),
    stop=lambda: gsp.unsubscribe_command(ACC_REF),
    open_session=open_session,
    decoder_for=decoder_from_description,
    name_hint="movesense",
    advertised_uuids=ADVERTISED_UUIDS,
    settings=MovesenseSettings(),
    stream_kinds=("acc",),
    configure_acc=_configure_acc,
    streams="3-axis accelerometer (float32 m/s², converted to g), sensor timestamps in ms",
    rates="104 Hz (52-1666 Hz possible); loss measured from timestamp gaps",
    detects=ACC_DETECTS,
)
