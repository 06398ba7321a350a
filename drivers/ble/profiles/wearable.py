"""What the accelerometer-wearable codecs (Polar PMD, Movesense GSP, MetaWear) hand on.

Each codec turns its device's notifications into :class:`AccBlock` s: samples in g, their
times on the device clock where the protocol has one, and the loss the protocol lets us see.
Pure data, no radio. :class:`AccSessionDecoder` turns any of them into the session decoder
the live session, replay and the packet log use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.codec import Block, ClockMap, PacketStats
from toetwitch.drivers.ble.profile_v1 import DeviceInfo, StreamInfo
from toetwitch.drivers.errors import RecordingError

logger = logging.getLogger("toetwitch")

#: What toetwitch counts from a wearable's accelerometer (``toetwitch devices``; the pipeline
#: adds that fasciculations need EMG).
ACC_DETECTS = ("leg and toe movements, periodic limb movements in sleep (PLM index) and twitches "
               "big enough to move the foot, all from acceleration")

#: Standard gravity (m/s² per g), CGPM 1901 / ISO 80000-3.
STANDARD_GRAVITY_MS2 = 9.80665


@dataclass(frozen=True)
class AccBlock:
    """Samples of one notification (or one reassembled message).

    Attributes
    ----------
    acc_g : (n, 3) float64
        x, y, z acceleration in g.
    t_device_s : (n,) float64 or None
        Sample times on the device clock, in seconds since the device's epoch (Polar: since
        2000-01-01; Movesense: since the sensor's local clock started). None when the protocol
        carries no device time (MetaWear streaming).
    lost_samples : int or None
        Samples missing just before this block, estimated from the device timestamps; None when
        the protocol cannot show loss (MetaWear streaming): unknown, not zero.
    discontinuity : bool
        The device clock went backwards or jumped implausibly (reset, reboot, re-subscription):
        the gap before this block cannot be measured.
    """

    acc_g: NDArray[np.float64]
    t_device_s: NDArray[np.float64] | None
    lost_samples: int | None
    discontinuity: bool = False

    @property
    def n(self) -> int:
        return int(len(self.acc_g))


def samples_lost_from_gap(gap_samples: float, expected: int, jitter_samples: float = 0.0,
                          slack: float = 0.25) -> int:
    """Samples lost between two blocks from a timestamp step.

    ``gap_samples`` is the step between the reference points of consecutive blocks converted to
    samples at the nominal rate; ``expected`` is the sample count that step should span.
    Real sensors run a little off their nominal rate and stamps are rounded (``jitter_samples``:
    the stamp resolution in samples), so a step counts as loss only beyond
    ``expected·(1 + slack) + jitter_samples + 0.5``; the loss is then the rounded excess.
    """
    excess = gap_samples - expected
    if excess <= slack * expected + jitter_samples + 0.5:
        return 0
    return int(round(excess))


# --------------------------------------------------------------------------------------------
# the session decoder every accelerometer wearable shares
# --------------------------------------------------------------------------------------------
#: How far a clockless stream's rate may be from the host clock's and still count as real
#: time (crystals are within 100 ppm; arrival jitter over a few seconds of fit, a few %).
REAL_TIME_TOLERANCE = 0.05

#: ``push(notification) -> AccBlocks``: one device's codec (a Polar frame gives one block, a
#: Movesense notification zero or more once DATA_PART2 is reassembled, a MetaWear one one).
PushCodec = Callable[[bytes], list[AccBlock]]


class AccSessionDecoder:
    """A wearable codec's :class:`AccBlock` s -> the session's sample blocks
    (:class:`toetwitch.drivers.ble.decoding.SessionDecoder`).

    One stream, ``acc`` (3 channels, g) at ``fs_hz``, the rate the device was started at.
    Samples a codec reports lost (``lost_samples``, from its device timestamps) are NaN, so
    sample *i* lands at index *i*. A clock discontinuity (reset, re-subscription) cannot be
    sized from the device: the samples after it are appended, and the break is counted.
    With no device time (``t_device_s`` None) the device clock is the sample index / fs, and
    the samples a reconnect cost (the device was stopped while the link was down) are sized
    from the host clock: the time between the last arrival before the drop and the first
    after it, less the samples that first notification holds. They are NaN, so later events
    keep their times, and counted apart (``samples_gap_estimated``): an estimate to within
    the arrival jitter, not a measured loss. Only a stream that runs in real time (fitted
    clock rate within :data:`REAL_TIME_TOLERANCE` of the host's) is sized so: an emulated
    device streaming faster than real time has no time that passes while its link is down.

    A notification the codec cannot read is counted in ``malformed`` and skipped (never
    raised): a damaged byte costs one notification's samples, which are then NaN if the
    next stamp shows them missing.

    ``loss_measurable`` False (MetaWear) makes :attr:`stats` say the loss is unknown.
    """

    def __init__(self, push: PushCodec, info: DeviceInfo, loss_measurable: bool = True,
                 samples_per_packet: float | None = None) -> None:
        st = info.stream("acc")
        if st is None or st.channels != 3:
            raise ValueError("a wearable session has one 3-channel acc stream")
        self._push = push
        self.info = info
        self.fs_hz = float(st.fs_hz)
        self.loss_measurable = loss_measurable
        self.ended = False
        self.clock = ClockMap()
        self.origin_device_s: float | None = None
        self.next_index = 0
        self.received = 0  # notifications read
        self.samples_received = 0
        self.samples_lost = 0
        self.malformed = 0
        self.discontinuities = 0
        self.samples_gap_estimated = 0
        self._per_packet = samples_per_packet
        self._resumed = False  # a reconnect happened and no sample has arrived since
        self._last_arrival_s: float | None = None

    def feed(self, data: bytes | bytearray, host_time_s: float | None = None) -> list[Block]:
        """Decode one notification; return the new sample blocks (possibly empty)."""
        try:
            blocks = self._push(bytes(data))
        except (RecordingError, ValueError) as exc:
            self.malformed += 1
            if self.malformed <= 3:
                logger.warning("skipped a malformed notification (%d bytes): %s", len(data), exc)
            return []
        self.received += 1
        out: list[Block] = []
        for b in blocks:
            if not b.n:
                continue
            lost = b.lost_samples or 0
            if b.discontinuity:
                self.discontinuities += 1
                lost = 0
            if self._resumed and b.t_device_s is None:
                lost = self._reconnect_gap(b.n, host_time_s)
                self.samples_gap_estimated += lost
            self._resumed = False
            values = b.acc_g
            if lost:
                values = np.concatenate([np.full((lost, 3), np.nan), values])
                if b.t_device_s is not None:
                    self.samples_lost += lost
            start = self.next_index
            self.next_index += len(values)
            self.samples_received += b.n
            last_device_s = (float(b.t_device_s[-1]) if b.t_device_s is not None
                             else (self.next_index - 1) / self.fs_hz)
            if b.discontinuity:  # the device clock restarted: the old fit no longer holds
                self.clock = ClockMap()
            if self.origin_device_s is None or b.discontinuity:
                self.origin_device_s = last_device_s - (self.next_index - 1) / self.fs_hz
            if host_time_s is not None:
                self.clock.add(last_device_s, host_time_s)
                if not b.discontinuity:
                    self._last_arrival_s = host_time_s
            out.append(Block("acc", 0, start, values))
        return out

    def link_event(self, event: Mapping[str, Any], host_time_s: float | None = None) -> None:
        """A reconnect (``connected`` with ``resume``): a device with its own clock shows the
        gap in its stamps (Polar, Movesense); for one without (MetaWear) the next samples'
        arrival sizes it (:meth:`_reconnect_gap`)."""
        if event.get("event") == "connected" and event.get("resume"):
            self._resumed = True

    def _reconnect_gap(self, n_first: int, host_time_s: float | None) -> int:
        """Samples not acquired between the last arrival before a reconnect and the first
        ``n_first`` samples after it, from the host clock (0 when it cannot be told)."""
        if host_time_s is None or self._last_arrival_s is None or self.clock.n_pairs < 2:
            return 0
        if abs(self.clock.slope - 1.0) > REAL_TIME_TOLERANCE:
            return 0
        gap = round((host_time_s - self._last_arrival_s) * self.fs_hz) - n_first
        return max(0, int(gap))

    @property
    def stats(self) -> PacketStats:
        per = self._per_packet or (self.samples_received / self.received if self.received else 1.0)
        lost_packets = int(np.ceil(self.samples_lost / per)) if self.samples_lost and per else 0
        return PacketStats(
            received=self.received, lost=lost_packets, duplicated=0,
            samples_received=self.samples_received, samples_lost=self.samples_lost,
            samples_duplicated=0, samples_lost_by_stream={"acc": self.samples_lost},
            malformed=self.malformed, discontinuities=self.discontinuities,
            drift_ppm=self.clock.drift_ppm, loss_measurable=self.loss_measurable,
            samples_gap_estimated=self.samples_gap_estimated,
        )

    def samples_seen(self, kind: str) -> int:
        return self.next_index if kind == "acc" else 0


def acc_device_info(fs_hz: float, model: str, firmware: str = "",
                    facts: Mapping[str, Any] | None = None) -> DeviceInfo:
    """The one stream a wearable session delivers: acceleration (id 0, 3 channels, g)."""
    return DeviceInfo(streams=(StreamInfo(0, "acc", 3, float(fs_hz), "f64", 1.0),),
                      clock_hz=float(fs_hz), boot_id=0, firmware=firmware, model=model,
                      protocol=0, extra=dict(facts or {}))


def describe(profile: str, **settings: Any) -> bytes:
    """The session description a host writes for a wearable (``{"profile": NAME, ...}``,
    see :mod:`toetwitch.drivers.ble.profiles`): what decoding the session needs."""
    return json.dumps({"profile": profile, **settings}, sort_keys=True).encode()


def read_description(data: bytes, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The settings of a wearable session description; a clear error names what is missing."""
    try:
        doc = json.loads(bytes(data).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"the session description is not JSON ({exc})", where=where) from None
    if not isinstance(doc, dict):
        raise RecordingError("the session description is not a JSON object", where=where)
    missing = [k for k in required if k not in doc]
    if missing:
        raise RecordingError(f"the {doc.get('profile', 'device')} session description lacks "
                             f"{', '.join(missing)}", where=where)
    return doc


async def disconnect_quietly(client: Any) -> None:
    """Drop a link the handshake is giving up on; a peer already gone is not an error."""
    try:
        await client.disconnect()
    except Exception:  # noqa: BLE001 - giving up on the link anyway
        pass
