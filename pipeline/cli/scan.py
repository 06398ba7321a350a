"""``toetwitch scan``: list nearby foot sensors that advertise a known profile."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "list nearby BLE foot sensors (name, address, signal strength, profile)"
DESCRIPTION = """\
Scan for Bluetooth Low Energy sensors that advertise a profile toetwitch speaks (the open
toetwitch profile v1, docs/protocol.md, a BITalino, a Movesense, a MetaWear; 'toetwitch
devices' lists them) and
list their name, address, signal strength (RSSI, dBm; closer to 0 is stronger) and the
profile each speaks. Pass a name or address to 'toetwitch monitor'. With --emulate FILE,
scans a virtual radio on which an emulated sensor serves FILE (no Bluetooth needed)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S",
                        help="seconds to listen (default 5)")
    parser.add_argument("--emulate", type=Path, metavar="FILE", default=None,
                        help="scan an emulated sensor serving FILE on a virtual radio")
    parser.add_argument("--device", choices=("toetwitch-v1", "bitalino", "polar-h10", "polar-verity",
                                             "movesense", "metawear"),
                        default="toetwitch-v1",
                        help="with --emulate: which sensor to emulate (default toetwitch-v1)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from toetwitch.drivers.ble.client import BluetoothUnavailableError, scan
    from toetwitch.pipeline.errors import UserError

    if not args.timeout > 0:
        raise UserError("--timeout must be a positive number of seconds", 2)

    async def go():  # noqa: ANN202
        if args.emulate is None:
            return await scan(args.timeout)
        from toetwitch.drivers import read_recording
        from toetwitch.pipeline.run.live import import_emulator

        emu = import_emulator()
        air = emu.VirtualAir()
        # the wearables advertise their config's default name ("Polar H10 EMU0001", ...)
        names = {"bitalino": "BITalino-EMU", "toetwitch-v1": "TT-EMU"}
        named = {"name": names[args.device]} if args.device in names else {}
        sensor = emu.emulated_sensor(air, read_recording(args.emulate), args.device, **named)
        await sensor.start()
        try:
            return await scan(args.timeout, **emu.bleak_kwargs(air)[0])
        finally:
            await sensor.stop()

    try:
        found = asyncio.run(go())
    except BluetoothUnavailableError as exc:
        raise UserError(str(exc), 1) from None
    if not found:
        print(f"no foot sensors found in {args.timeout:g} s (is the sensor on and close by?)")
        return 1
    print(f"{'NAME':<24} {'ADDRESS':<40} {'RSSI':>5}  PROFILE")
    for s in found:
        print(f"{(s.name or '?'):<24} {s.address:<40} {s.rssi:>5}  {s.profile}")
    return 0
