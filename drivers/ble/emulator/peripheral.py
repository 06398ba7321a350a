"""What every emulated sensor shares: one bumble device on a :class:`VirtualAir`, at most one
connection at a time, and the same lifecycle (power on and advertise; drop the link as a lost
radio would; power down).

A sensor class sets ``air``, ``device``, ``_controller``, ``_conn`` and ``stats`` (with
``connections`` and ``disconnects`` counters) and implements :meth:`_on_disconnection` (what
the device does when its link goes) and :meth:`_halt` (stop producing before power-down).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from bumble import hci
from bumble.controller import Controller
from bumble.device import Connection, Device

from toetwitch.drivers.ble.emulator.backend import VirtualAir, power_down
from toetwitch.drivers.ble.profile_v1 import ADVERTISING_INTERVAL_MS


class EmulatedPeripheral:
    """Lifecycle of an emulated sensor (see the module doc)."""

    air: VirtualAir
    device: Device
    _controller: Controller
    _conn: Connection | None
    stats: Any
    #: advertising interval (ms); every emulated sensor advertises as the open profile asks
    advertising_interval_ms: float = ADVERTISING_INTERVAL_MS

    def _on_connection(self, conn: Connection) -> None:
        self.stats.connections += 1
        self._conn = conn
        conn.on(Connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(conn))

    def _on_disconnection(self, conn: Connection) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _halt(self) -> None:
        """Stop producing data (the sensor is being powered down)."""

    async def start(self) -> None:
        """Power on and advertise (advertising restarts after every disconnect)."""
        await self.device.power_on()
        await self.device.start_advertising(auto_restart=True,
                                            advertising_interval_min=self.advertising_interval_ms,
                                            advertising_interval_max=self.advertising_interval_ms)

    async def stop(self) -> None:
        """Stop producing, drop any link and power off."""
        self._halt()
        await power_down(self.device, self._conn, self.air, self._controller)

    async def drop_link(self, reason: int = hci.HCI_CONNECTION_TIMEOUT_ERROR) -> None:
        """Drop the link as a lost radio would (the central sees ``reason``); the device
        reacts as its :meth:`_on_disconnection` says."""
        conn = self._conn
        if conn is None:
            return
        self.stats.disconnects += 1
        self._on_disconnection(conn)
        self._link_dropped()
        await conn.disconnect(reason=reason)

    def _link_dropped(self) -> None:
        """Hook: bookkeeping of a forced drop (after :meth:`_on_disconnection`)."""

    def _end_live_run(self) -> None:
        """End a streaming run (acquisition or measurement stopped): note when, for a sensor
        whose recording runs on meanwhile (``_live``, ``_stopped_at``), and cancel its
        streaming task unless that task is the caller."""
        if getattr(self, "_live", False):
            self._live = False
            try:
                self._stopped_at = asyncio.get_running_loop().time()
            except RuntimeError:
                self._stopped_at = None
        task = getattr(self, "_task", None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._task = None


class SeededLoss:
    """Seeded notification loss whose realised share stays within about one notification of
    ``share``: each notification adds ``share`` to a debt, and is lost when a uniform draw falls
    under the debt (which then drops by one)."""

    def __init__(self, share: float, seed: int) -> None:
        if not 0.0 <= share < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {share}")
        self.share = share
        self._rng = np.random.default_rng(seed)
        self._debt = 0.0

    def lose(self) -> bool:
        if not self.share:
            return False
        self._debt += self.share
        if self._rng.random() < self._debt:
            self._debt -= 1.0
            return True
        return False
