"""What every profile's decoder offers the live session, replay and the packet log.

:class:`toetwitch.drivers.ble.codec.Decoder` (profile v1) and
:class:`toetwitch.drivers.ble.profiles.bitalino.BitalinoDecoder` both satisfy :class:`SessionDecoder`;
the live session and the packet-log reader use nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from toetwitch.drivers.ble.codec import Block, ClockMap, PacketStats
    from toetwitch.drivers.ble.profile_v1 import DeviceInfo


class SessionDecoder(Protocol):
    """Stateful decoder of one session's notifications.

    ``info`` lists the streams (kind, channels, rate) the decoder delivers; ``feed`` turns
    one notification (with its host arrival time, s) into :class:`~toetwitch.drivers.ble.codec.Block`
    objects whose lost samples are NaN, so sample *i* of a stream lands at index *i*.
    """

    info: DeviceInfo
    ended: bool
    clock: ClockMap
    origin_device_s: float | None

    def feed(self, data: bytes | bytearray, host_time_s: float | None = None) -> list[Block]: ...

    @property
    def stats(self) -> PacketStats: ...

    def samples_seen(self, kind: str) -> int: ...

    def link_event(self, event: Mapping[str, Any], host_time_s: float | None = None) -> None:
        """A link event (``{"event": "connected", "resume": True, ...}``), fed in the same
        order live and from the packet log."""

