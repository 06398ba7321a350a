"""Registry of device profiles: one module per sensor family.

A profile says which GATT service a sensor advertises, where its info, control and data
characteristics are, how to start and stop it, and how to decode its packets. toetwitch's
own open profile is :mod:`toetwitch.drivers.ble.profiles.toetwitch_v1`; a commercial sensor gets its
own module exposing ``PROFILE`` and a line in :data:`PROFILE_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from toetwitch.drivers.ble.codec import Decoder
from toetwitch.drivers.ble.profile_v1 import DeviceInfo

#: Modules that define a ``PROFILE``; imported on first use.
PROFILE_MODULES = ("toetwitch.drivers.ble.profiles.toetwitch_v1",)


@dataclass(frozen=True)
class DeviceProfile:
    """How to talk to one family of sensors.

    ``start(resume)`` gives the control-point bytes that start streaming (``resume=True``
    after a reconnect: keep counting where the session was); ``stop()`` those that stop it.
    """

    name: str
    description: str
    service_uuid: str
    info_uuid: str
    control_uuid: str
    data_uuid: str
    parse_info: Callable[[bytes], DeviceInfo]
    start: Callable[[bool], bytes]
    stop: Callable[[], bytes]
    make_decoder: Callable[[DeviceInfo], Decoder] = Decoder


_REGISTRY: dict[str, DeviceProfile] = {}


def profiles() -> dict[str, DeviceProfile]:
    """All known profiles by name."""
    if not _REGISTRY:
        for mod in PROFILE_MODULES:
            p: DeviceProfile = importlib.import_module(mod).PROFILE
            _REGISTRY[p.name] = p
    return dict(_REGISTRY)


def get_profile(name: str) -> DeviceProfile:
    """The profile called ``name``; ``KeyError`` lists the known ones."""
    known = profiles()
    if name not in known:
        raise KeyError(f"unknown device profile {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def profile_for_services(service_uuids: list[str]) -> DeviceProfile | None:
    """The profile whose service is among the advertised ``service_uuids``, if any."""
    low = {u.lower() for u in service_uuids}
    return next((p for p in profiles().values() if p.service_uuid.lower() in low), None)


def service_uuids() -> list[str]:
    """Service UUIDs of every known profile (the scan filter)."""
    return [p.service_uuid for p in profiles().values()]
