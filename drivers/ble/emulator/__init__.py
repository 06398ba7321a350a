"""The emulated foot sensor: a bleak backend on bumble's in-process virtual radio plus a
virtual peripheral that serves profile v1 from any recording.

::

    air = VirtualAir()
    sensor = EmulatedSensor(air, recording, SensorConfig(speed=None, loss=0.05, seed=1))
    await sensor.start()
    scanner_kwargs, client_kwargs = bleak_kwargs(air)
    link = SensorLink(None, queue, scanner_kwargs=scanner_kwargs, client_kwargs=client_kwargs)
"""

from __future__ import annotations

from typing import Any

from toetwitch.drivers.ble.emulator.backend import BumbleClient, BumbleScanner, VirtualAir
from toetwitch.drivers.ble.emulator.bitalino import BitalinoConfig, BitalinoStats, EmulatedBitalino
from toetwitch.drivers.ble.emulator.metawear import EmulatedMetaWear, MetaWearConfig, MetaWearStats
from toetwitch.drivers.ble.emulator.movesense import (
    EmulatedMovesense,
    MovesenseConfig,
    MovesenseStats,
)
from toetwitch.drivers.ble.emulator.polar import (
    EmulatedPolar,
    PolarConfig,
    PolarH10Config,
    PolarStats,
    PolarVerityConfig,
)
from toetwitch.drivers.ble.emulator.sensor import (
    EmulatedSensor,
    SensorConfig,
    SensorStats,
    choose_format,
)
from toetwitch.drivers.recording import Recording

__all__ = [
    "BitalinoConfig",
    "BitalinoStats",
    "BumbleClient",
    "BumbleScanner",
    "EmulatedBitalino",
    "EmulatedPolar",
    "EmulatedMetaWear",
    "EmulatedMovesense",
    "EmulatedSensor",
    "MetaWearConfig",
    "MetaWearStats",
    "MovesenseConfig",
    "MovesenseStats",
    "SensorConfig",
    "PolarConfig",
    "PolarH10Config",
    "PolarStats",
    "PolarVerityConfig",
    "SensorStats",
    "VirtualAir",
    "bleak_kwargs",
    "choose_format",
    "emulated_sensor",
]

#: Profiles with an emulated sensor: name -> (sensor class, config class).
EMULATED = {"toetwitch-v1": (EmulatedSensor, SensorConfig), "bitalino": (EmulatedBitalino, BitalinoConfig)}
EMULATED["polar-h10"] = (EmulatedPolar, PolarH10Config)
EMULATED["polar-verity"] = (EmulatedPolar, PolarVerityConfig)
EMULATED["movesense"] = (EmulatedMovesense, MovesenseConfig)
EMULATED["metawear"] = (EmulatedMetaWear, MetaWearConfig)


def emulated_sensor(air: VirtualAir, recording: Recording, profile: str = "toetwitch-v1",
                    **config: Any) -> Any:
    """An emulated sensor of ``profile`` serving ``recording`` on ``air``; ``config`` are the
    fields of its config class (:class:`SensorConfig`, :class:`BitalinoConfig`,
    :class:`MovesenseConfig`, :class:`MetaWearConfig`)."""
    try:
        cls, cfg = EMULATED[profile]
    except KeyError:
        raise ValueError(f"no emulated sensor for profile {profile!r}; emulated: "
                         f"{', '.join(EMULATED)}") from None
    return cls(air, recording, cfg(**config))


def bleak_kwargs(
    air: VirtualAir, mtu: int = 247, timeout_s: float = 5.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(scanner_kwargs, client_kwargs)`` that route bleak through ``air``; connecting to
    a virtual sensor takes milliseconds, so the connect timeout is short."""
    return (
        {"backend": BumbleScanner, "air": air},
        {"backend": BumbleClient, "air": air, "mtu": mtu, "timeout": timeout_s},
    )
