"""Lab Streaming Layer outlets for a live session (``toetwitch monitor --lsl``).

Three outlets, so researchers can record them with LabRecorder or read them with any LSL
client next to their other devices:

* ``<name> EMG`` — type ``EMG``, 1 channel, float32 µV, nominal rate = the sensor's;
* ``<name> ACC`` — type ``Accelerometer``, 3 channels (x, y, z), float32 g;
* ``<name> twitches`` — type ``Markers``, irregular, one string per reported event
  (``"fasciculation emg 85uV"``), stamped at the event's own time.

Samples are stamped in the LSL clock (``pylsl.local_clock()``): sample *i* at
``t0 + i / fs``, with ``t0`` the time of sample 0 from the device-clock mapping (lost samples
are sent as NaN, so the stamps stay regular). Set ``TOETWITCH_LSL_SCOPE=machine`` to keep
every LSL packet on this computer (tests and CI do: no LAN multicast).

Needs ``pylsl`` (its Linux x86-64, macOS and Windows wheels bundle liblsl).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.log import logger

#: liblsl configuration that keeps discovery on this machine (no multicast, IPv4 loopback).
MACHINE_SCOPE_CONFIG = "[ports]\nIPv6 = disable\n[multicast]\nResolveScope = machine\n"

_configured = False


def import_pylsl() -> Any:
    """Import pylsl (configured for machine scope if asked); :class:`UserError` if missing."""
    global _configured
    try:
        import pylsl
    except (ImportError, RuntimeError) as exc:  # RuntimeError: wheel without liblsl
        raise UserError(
            f"--lsl needs the pylsl package with its liblsl library ({exc}); install it with "
            "pip install 'toetwitch[lsl]' (on Linux ARM or old glibc also 'conda install -c conda-forge liblsl')",
            1,
        ) from None
    if not _configured:
        if os.environ.get("TOETWITCH_LSL_SCOPE", "").lower() == "machine":
            pylsl.set_config_content(MACHINE_SCOPE_CONFIG)
        _configured = True
    return pylsl


class LslPublisher:
    """Publish one live session's raw streams and reported events as LSL outlets.

    Call :meth:`start` with the device's streams, then :meth:`push` for each decoded block
    and :meth:`events` for each batch of reported events; :meth:`close` at the end.
    """

    def __init__(self, name: str):
        self.name = name
        self.pylsl = import_pylsl()
        self.outlets: dict[str, Any] = {}
        self._fs: dict[str, float] = {}
        self._t0_lsl: float | None = None

    def start(self, fs_emg_hz: float | None, fs_acc_hz: float | None, source_id: str = "") -> None:
        """Create the outlets (once)."""
        if self.outlets:
            return
        lsl = self.pylsl
        for kind, fs, typ, labels, unit in (
            ("emg", fs_emg_hz, "EMG", ["emg"], "microvolts"),
            ("acc", fs_acc_hz, "Accelerometer", ["acc_x", "acc_y", "acc_z"], "g"),
        ):
            if not fs:
                continue
            info = lsl.StreamInfo(f"{self.name} {kind.upper()}", typ, len(labels), float(fs),
                                  lsl.cf_float32, f"toetwitch-{source_id}-{kind}")
            chans = info.desc().append_child("channels")
            for label in labels:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                ch.append_child_value("unit", unit)
                ch.append_child_value("type", typ)
            info.desc().append_child_value("manufacturer", "toetwitch")
            self.outlets[kind] = lsl.StreamOutlet(info)
            self._fs[kind] = float(fs)
        markers = lsl.StreamInfo(f"{self.name} twitches", "Markers", 1, lsl.IRREGULAR_RATE,
                                 lsl.cf_string, f"toetwitch-{source_id}-events")
        self.outlets["events"] = lsl.StreamOutlet(markers)
        logger.info("LSL outlets: %s", ", ".join(self.outlets))

    @property
    def has_origin(self) -> bool:
        """Whether ``t0`` is fixed already (later :meth:`set_origin` calls are ignored)."""
        return self._t0_lsl is not None

    def set_origin(self, host_time_of_sample0_s: float) -> None:
        """Fix ``t0`` from the wall-clock time (``time.time()`` domain) of sample 0."""
        if self._t0_lsl is None:
            self._t0_lsl = self.pylsl.local_clock() - (time.time() - host_time_of_sample0_s)

    def push(self, kind: str, start_index: int, values: np.ndarray) -> None:
        """Send decoded samples of ``kind`` (``(k, channels)``) starting at ``start_index``."""
        outlet = self.outlets.get(kind)
        if outlet is None or not len(values):
            return
        if self._t0_lsl is None:  # no clock mapping yet: sample 0 was block-length ago
            self.set_origin(time.time() - (start_index + len(values)) / self._fs[kind])
        x = np.ascontiguousarray(values[:, :3] if kind == "acc" else values[:, :1], np.float32)
        last = start_index + len(values) - 1
        outlet.push_chunk(x, self._t0_lsl + last / self._fs[kind])

    def events(self, events: Any) -> None:
        """Send each event row (a DataFrame of events) as a marker at the event's time."""
        outlet = self.outlets.get("events")
        if outlet is None or self._t0_lsl is None:
            return
        for t, typ, src, p2p in zip(events["time_s"], events["type"], events["source"],
                                    events["peak_to_peak_uv"], strict=True):
            size = f" {p2p:.0f}uV" if p2p == p2p else ""
            outlet.push_sample([f"{typ} {src}{size}"], self._t0_lsl + float(t))

    def close(self) -> None:
        """Drop the outlets (their streams disappear from the network)."""
        self.outlets.clear()
