"""Registry of device profiles: one module per sensor family.

A profile says which GATT service a sensor advertises, where its info, control and data
characteristics are, how to start and stop it, and how to decode its packets. toetwitch's
own open profile is :mod:`toetwitch.drivers.ble.profiles.toetwitch_v1`; a commercial sensor gets its
own module exposing ``PROFILE`` (or ``PROFILES``, a tuple, for a family of devices that share
a protocol: Polar H10 and Verity Sense) and a line in :data:`PROFILE_MODULES`.

**The session description.** Every session starts with one blob of bytes that says how to
decode everything after it (:attr:`toetwitch.drivers.ble.client.LinkItem` ``"info"``, and the Info
frame of a packet log). For profile v1 it is the sensor's own Info characteristic, byte for
byte (so v1 logs are unchanged). A sensor that does not describe itself (BITalino) gets a
UTF-8 JSON object written by the host, ``{"profile": NAME, ...settings}`` (channel map,
rates, calibration): :func:`open_decoder` reads either, so ``replay`` and ``analyse`` of a
log decode it with exactly the settings the live session used.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from toetwitch.drivers.ble.codec import Decoder
from toetwitch.drivers.ble.decoding import SessionDecoder
from toetwitch.drivers.ble.profile_v1 import DeviceInfo, decode_info
from toetwitch.drivers.errors import RecordingError

#: Modules that define a ``PROFILE``; imported on first use.
PROFILE_MODULES = ("toetwitch.drivers.ble.profiles.toetwitch_v1", "toetwitch.drivers.ble.profiles.bitalino",
                   "toetwitch.drivers.ble.profiles.polar",
                   "toetwitch.drivers.ble.profiles.movesense",
                   "toetwitch.drivers.ble.profiles.metawear_session")

#: Profile names of docs/contracts.md §7 that are planned but have no module yet (``devices`` says so).
NOT_YET_SUPPORTED: tuple[str, ...] = ()

#: ``open_session(client, profile, deliver, first) -> session description bytes | None``:
#: subscribe, configure and start a sensor on a fresh connection (``first`` False after a
#: reconnect); ``deliver(bytes)`` receives every data notification.
OpenSession = Callable[[Any, "DeviceProfile", Callable[[bytes], None], bool],
                       Awaitable[bytes | None]]
#: ``close_session(client, profile)``: stop a sensor whose stop takes more than one write
#: (MetaWear's stop sequence); replaces writing ``stop()`` to the control characteristic.
CloseSession = Callable[[Any, "DeviceProfile"], Awaitable[None]]


@dataclass(frozen=True)
class DeviceProfile:
    """How to talk to one family of sensors.

    ``start(resume)`` gives the control-point bytes that start streaming (``resume=True``
    after a reconnect: keep counting where the session was); ``stop()`` those that stop it.
    ``open_session`` (optional) replaces the default handshake (read Info, subscribe, START)
    for sensors that need another one, and ``close_session`` (optional) the stop;
    ``decoder_for(description_bytes, where)`` builds the session's decoder. ``settings`` holds what the user configured (a BITalino's channel
    map); ``streams``, ``rates`` and ``detects`` are the lines ``toetwitch devices`` prints.
    """

    name: str
    description: str
    service_uuid: str
    info_uuid: str | None
    control_uuid: str
    data_uuid: str
    parse_info: Callable[[bytes], DeviceInfo]
    start: Callable[[bool], bytes]
    stop: Callable[[], bytes]
    make_decoder: Callable[[DeviceInfo], Any] = Decoder
    open_session: OpenSession | None = None
    decoder_for: Callable[[bytes, str], SessionDecoder] | None = None
    name_hint: str | None = None  # advertised names containing this (any case) also match
    #: The service UUID is shared with other profiles (Polar PMD): only the name hint decides.
    name_required: bool = False
    #: Other services an advertisement of this sensor may carry instead of ``service_uuid``
    #: (a Polar H10 advertises heart rate 0x180D, a Movesense a 16-bit UUID): they join the
    #: scan filter, and they match unless ``name_required``.
    advertised_uuids: tuple[str, ...] = ()
    close_session: CloseSession | None = None
    #: ``configure_acc(profile, rate_hz, range_g) -> profile``: the profile asking for this
    #: accelerometer rate and/or full scale (None: the default); ``ValueError`` says what the
    #: sensor offers. None: the sensor's accelerometer is not the host's to choose.
    configure_acc: Callable[[DeviceProfile, float | None, int | None], DeviceProfile] | None = None
    settings: Any = None
    #: the stream kinds a session of this sensor delivers (``"emg"``, ``"acc"``), as a
    #: summary's ``streams`` names them
    stream_kinds: tuple[str, ...] = ("emg", "acc")
    streams: str = ""
    rates: str = ""
    detects: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def new_decoder(self, description: bytes, where: str = "device info") -> SessionDecoder:
        """The decoder of a session that began with ``description`` (see module doc)."""
        if self.decoder_for is not None:
            return self.decoder_for(description, where)
        return self.make_decoder(self.parse_info(description))

    def matches(self, local_name: str | None, service_uuids: list[str]) -> bool:
        """Whether an advertisement is of this profile (service UUID, or name hint; only the
        name hint when ``name_required``, as the service does not tell the devices apart)."""
        by_name = bool(self.name_hint and local_name and self.name_hint in local_name.lower())
        if self.name_required:
            return by_name
        seen = {u.lower() for u in service_uuids}
        if self.service_uuid.lower() in seen or any(u.lower() in seen for u in self.advertised_uuids):
            return True
        return by_name


_REGISTRY: dict[str, DeviceProfile] = {}


def profiles() -> dict[str, DeviceProfile]:
    """All known profiles by name."""
    if not _REGISTRY:
        for mod in PROFILE_MODULES:
            m = importlib.import_module(mod)
            for p in getattr(m, "PROFILES", None) or (m.PROFILE,):
                _REGISTRY[p.name] = p
    return dict(_REGISTRY)


def get_profile(name: str) -> DeviceProfile:
    """The profile called ``name``; ``KeyError`` lists the known ones."""
    known = profiles()
    if name not in known:
        raise KeyError(f"unknown device profile {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def profile_for_services(service_uuids: list[str], local_name: str | None = None
                         ) -> DeviceProfile | None:
    """The profile whose service is among the advertised ``service_uuids`` (or whose name
    hint is in ``local_name``), if any."""
    return next((p for p in profiles().values() if p.matches(local_name, service_uuids)), None)


def service_uuids() -> list[str]:
    """Service UUIDs of every known profile (the scan filter), each once."""
    uuids = (u for p in profiles().values() for u in (p.service_uuid, *p.advertised_uuids))
    return list(dict.fromkeys(u.lower() for u in uuids))


def profile_of_description(description: bytes) -> DeviceProfile:
    """The profile a session description belongs to: a JSON object with a string
    ``"profile"`` key names it; anything else is profile v1's Info characteristic."""
    try:
        doc = json.loads(bytes(description).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("profile"), str) and "protocol" not in doc:
        try:
            return get_profile(doc["profile"])
        except KeyError as exc:
            raise RecordingError(str(exc.args[0])) from None
    return get_profile("toetwitch-v1")


def open_decoder(description: bytes, where: str = "device info") -> SessionDecoder:
    """The decoder for a session that began with ``description``, whatever its profile."""
    return profile_of_description(description).new_decoder(description, where)


__all__ = [
    "NOT_YET_SUPPORTED",
    "PROFILE_MODULES",
    "DeviceProfile",
    "decode_info",
    "get_profile",
    "open_decoder",
    "profile_for_services",
    "profile_of_description",
    "profiles",
    "service_uuids",
]
