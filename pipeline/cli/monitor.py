"""``toetwitch monitor``: stream a BLE foot sensor live (or an emulated one) and count twitches."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

HELP = "connect to a BLE foot sensor and count twitches live (or --emulate FILE)"
DESCRIPTION = """\
Connect to a foot sensor (by address or advertised name; the first one found if omitted),
start it, and count twitches as they happen: each twitch is printed as it is reported and a
status line shows the count, the rate and the link quality. Every packet received is written
to a raw packet log (.ttlog) as it arrives, so 'toetwitch replay LOG' gives the same twitches
later, even after a crash. The link is re-established after a drop and the session goes on.
Ctrl-C stops cleanly and prints the session summary. With --emulate FILE, an emulated sensor
serving FILE runs on a virtual Bluetooth radio inside toetwitch (no hardware needed), through
the same client code. toetwitch informs; it does not diagnose."""


def _speed(text: str) -> float | None:
    from toetwitch.pipeline.cli.replay import parse_speed

    return parse_speed(text)


def _loss(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--loss takes a number between 0 and 1, not {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError("--loss must be at least 0 and below 1 (e.g. 0.05 = 5 %)")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="ADDRESS|NAME", default=None,
                        help="sensor address or advertised name (default: the first sensor found)")
    parser.add_argument("--emulate", type=Path, metavar="FILE", default=None,
                        help="stream FILE from an emulated sensor on a virtual radio")
    parser.add_argument("--speed", type=_speed, default=1.0, metavar="X|max",
                        help="with --emulate: multiple of real time (default 1), or 'max'")
    parser.add_argument("--loss", type=_loss, default=0.0, metavar="P",
                        help="with --emulate: share of packets lost on the air, at random (0-1)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="with --emulate: seed of the random losses (default 0)")
    parser.add_argument("--drop-every", type=int, default=0, metavar="N",
                        help="with --emulate: drop the radio link after every N packets "
                             "(exercises reconnect and resume)")
    parser.add_argument("--device", default=None, metavar="NAME",
                        help="the sensor's profile (see 'toetwitch devices'): toetwitch-v1 "
                             "(default: whatever the sensor advertises), bitalino, polar-h10, "
                             "polar-verity, movesense or metawear")
    parser.add_argument("--channels", default=None, metavar="MAP",
                        help="with --device bitalino: which port holds which sensor, e.g. "
                             "A1=emg,A3=acc_x,A4=acc_y,A5=acc_z (the default)")
    parser.add_argument("--pack", choices=("pair", "frame", "bytes20"), default="pair",
                        help="with --emulate --device bitalino: frames per notification "
                             "(pair: as the firmware sends at 1000 Hz; default)")
    parser.add_argument("--acc-rate", type=float, default=None, metavar="HZ",
                        help="with an accelerometer wearable (--device polar-h10, polar-verity, "
                             "movesense, metawear): the accelerometer rate to ask for")
    parser.add_argument("--acc-range", type=int, default=None, metavar="G",
                        help="with --device polar-h10, polar-verity or metawear: the "
                             "accelerometer full scale, ±G")
    parser.add_argument("--out", "-o", type=Path, metavar="DIR", default=None,
                        help="write events.csv, episodes.csv, summary.json into DIR/<name>/")
    log = parser.add_mutually_exclusive_group()
    log.add_argument("--log", type=Path, metavar="FILE", default=None,
                     help="raw packet log to write (default: DIR/<name>.ttlog with --out, "
                          "else ./<name>.ttlog)")
    log.add_argument("--no-log", action="store_true", help="do not write a packet log")
    parser.add_argument("--lsl", action="store_true",
                        help="publish the raw streams and twitch events as Lab Streaming Layer outlets")
    parser.add_argument("--scan-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to look for the sensor (default 10)")
    parser.add_argument("--block-ms", type=float, default=None, metavar="MS",
                        help="milliseconds of signal per detector call (default: the detector's "
                             "100-ms block; more only delays what is shown)")
    parser.add_argument("--provisional", choices=("auto", "on", "off"), default="auto",
                        help="show each twitch as soon as it is seen (~0.4 s), marked 'checking', "
                             "and say so if the rules that look 2 s ahead reject it; without this "
                             "only settled events are printed (auto: on when output is a terminal)")
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from toetwitch.drivers.ble.client import (
        BluetoothUnavailableError,
        LinkFailedError,
        SensorNotFoundError,
    )
    from toetwitch.drivers.ble.packetlog import PacketLogWriter
    from toetwitch.drivers.errors import RecordingError
    from toetwitch.pipeline.errors import UserError
    from toetwitch.pipeline.present.capability import capability_lines
    from toetwitch.pipeline.present.text import LiveDisplay, provisional_wanted, render_summary
    from toetwitch.pipeline.run.live import (
        LiveSession,
        default_log_path,
        import_emulator,
        run_monitor,
    )
    from toetwitch.pipeline.run.outputs import write_outputs

    if args.emulate is not None and args.target is not None:
        raise UserError("give a sensor ADDRESS|NAME or --emulate FILE, not both", 2)
    if args.emulate is None and (args.loss or args.speed != 1.0 or args.drop_every
                                 or args.pack != "pair"):
        raise UserError("--speed, --loss, --drop-every and --pack apply to --emulate only", 2)
    if args.drop_every < 0:
        raise UserError("--drop-every must be 0 (never) or a positive number of packets", 2)
    if args.block_ms is not None and not 20.0 <= args.block_ms <= 2000.0:
        raise UserError("--block-ms must be between 20 and 2000", 2)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder", 2)

    profile = _profile(args)
    rec = None
    if args.emulate is not None:
        from toetwitch.drivers import read_recording
        from toetwitch.pipeline.run.live import import_emulator

        import_emulator()  # a missing extra is said before anything is written
        rec = read_recording(args.emulate)
        name = rec.name
    else:
        name = "live-" + datetime.now().strftime("%Y%m%d-%H%M%S")

    log_path = None
    if not args.no_log:
        log_path = args.log or default_log_path(name, args.out)
        log_path.parent.mkdir(parents=True, exist_ok=True)
    lsl = None
    if args.lsl:
        from toetwitch.pipeline.run.lsl import LslPublisher

        lsl = LslPublisher(name)

    tty = sys.stderr.isatty() and not args.quiet

    def clear_status() -> None:
        if tty:
            sys.stderr.write("\r\033[K")

    display = LiveDisplay(provisional_wanted(args.provisional, args.quiet), args.quiet, clear_status)

    def on_start(analyser) -> None:  # noqa: ANN001 - StreamingAnalyser
        """Once the sensor has said what it streams: an accelerometer alone is said plainly."""
        if args.quiet:
            return
        clear_status()
        for line in capability_lines("acc" if analyser.emg is None else "emg"):
            print(f"note: {line}", flush=True)

    def on_status(line: str) -> None:
        if tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()

    if not args.quiet:
        src = (f"emulated sensor serving {args.emulate.name} at "
               f"{'max speed' if args.speed is None else f'{args.speed:g}x'}"
               + (f", {100 * args.loss:g} % packet loss" if args.loss else "")
               + (f" as a {profile.name}" if profile is not None else "")
               if rec is not None else (args.target or "the first foot sensor found"))
        print(f"monitoring {src}; Ctrl-C stops", flush=True)
        if log_path is not None:
            print(f"packet log: {log_path}", file=sys.stderr, flush=True)

    writer = PacketLogWriter(log_path) if log_path is not None else None
    session = LiveSession(name, writer,
                          block_s=None if args.block_ms is None else args.block_ms / 1000.0,
                          lsl=lsl, on_start=on_start, **display.callbacks())
    sensor_config = None
    if rec is not None:
        try:
            emu = import_emulator()
        except UserError:
            _close(writer)
            raise

        if profile is not None and profile.name not in emu.EMULATED:
            _close(writer)
            raise UserError(f"--emulate: there is no emulated {profile.name}; emulated: "
                            f"{', '.join(emu.EMULATED)}", 2)
        if profile is not None and profile.name == "bitalino":
            # the emulated board is wired as the host's channel map says
            sensor_config = emu.BitalinoConfig(wiring=dict(profile.settings.channels),
                                               speed=args.speed, loss=args.loss, seed=args.seed,
                                               disconnect_every=args.drop_every, pack=args.pack)
        elif profile is not None and profile.name in emu.EMULATED:
            # every emulated sensor's config takes the same link knobs
            config_cls = emu.EMULATED[profile.name][1]
            sensor_config = config_cls(speed=args.speed, loss=args.loss, seed=args.seed,
                                       disconnect_every=args.drop_every)
        else:
            sensor_config = emu.SensorConfig(name="TT-EMU", speed=args.speed, loss=args.loss,
                                             seed=args.seed, disconnect_every=args.drop_every)
    try:
        outcome = asyncio.run(
            run_monitor(session, args.target, emulate=rec, sensor_config=sensor_config,
                        scan_timeout_s=args.scan_timeout, on_status=on_status, profile=profile)
        )
    except (BluetoothUnavailableError, SensorNotFoundError, LinkFailedError) as exc:
        if session.decoder is None:
            _close(writer)
            raise UserError(str(exc), 1) from None
        print(f"toetwitch: {exc}; ending the session with what was received", file=sys.stderr)
        outcome = None
    except RecordingError as exc:  # the sensor refused the handshake (e.g. after a reconnect)
        if session.decoder is None:
            _close(writer)
            raise
        print(f"toetwitch: {exc}; ending the session with what was received", file=sys.stderr)
        outcome = None
    except BaseException:  # a hard second Ctrl-C, a bad sensor: keep what the log holds
        _close(writer)
        raise
    finally:
        if lsl is not None:
            lsl.close()
    if tty:
        sys.stderr.write("\r\033[K")
    result = outcome.result if outcome is not None else session.finish()
    print(render_summary(result, name))
    if args.out is not None:
        out = write_outputs(result, args.out / name)
        print(f"wrote {out}", file=sys.stderr)
    if log_path is not None:
        print(f"packet log: {log_path} (replay with: toetwitch replay {log_path})", file=sys.stderr)
    from toetwitch.pipeline.store.journal import (
        journal_analysis,
        journal_problem,
        report_journal_problem,
    )
    from toetwitch.pipeline.store.policy import is_demonstration

    if args.emulate is not None and is_demonstration(args.emulate):
        return 0  # demonstration data is never journaled (store/policy.py)
    problem = journal_problem(lambda: journal_analysis(args, result, log_path))
    return 0 if problem is None else report_journal_problem(problem, "the session")


def _profile(args: argparse.Namespace):  # noqa: ANN202 - DeviceProfile | None
    """The profile ``--device`` names, configured with ``--channels``; None = as advertised."""
    from toetwitch.pipeline.errors import UserError

    acc_asked = args.acc_rate is not None or args.acc_range is not None
    if args.device is None:
        if acc_asked:
            raise UserError("--acc-rate and --acc-range need --device (e.g. --device polar-h10)", 2)
        if args.channels is not None:
            raise UserError("--channels needs --device (e.g. --device bitalino)", 2)
        if args.pack != "pair":
            raise UserError("--pack applies to --emulate --device bitalino only", 2)
        return None
    from toetwitch.drivers.ble.profiles import NOT_YET_SUPPORTED, get_profile, profiles

    if args.device in NOT_YET_SUPPORTED:
        raise UserError(f"--device {args.device}: this sensor is not supported yet "
                        "('toetwitch devices' lists the supported ones)", 2)
    if args.device not in profiles():
        raise UserError(f"--device {args.device!r} is unknown; supported: "
                        f"{', '.join(sorted(profiles()))} ('toetwitch devices')", 2)
    if args.device != "bitalino":
        if args.channels is not None or args.pack != "pair":
            raise UserError("--channels and --pack apply to --device bitalino only", 2)
        profile = get_profile(args.device)
        if not acc_asked:
            return profile
        if profile.configure_acc is None:
            wearables = [p.name for p in profiles().values() if p.configure_acc is not None]
            raise UserError(f"--acc-rate and --acc-range apply to {', '.join(wearables)}; "
                            f"a {args.device} sets its own rates", 2)
        try:
            return profile.configure_acc(profile, args.acc_rate, args.acc_range)
        except ValueError as exc:
            raise UserError(f"--device {args.device}: {exc}", 2) from None
    if acc_asked:
        raise UserError("--acc-rate and --acc-range apply to the accelerometer wearables; a "
                        "BITalino samples every port at 1000 Hz", 2)
    from toetwitch.drivers.ble.profiles import bitalino

    try:
        settings = bitalino.BitalinoSettings(channels=bitalino.parse_channel_map(args.channels),
                                             command_gap_s=0.0 if args.emulate else 0.15)
    except ValueError as exc:
        raise UserError(str(exc), 2) from None
    return bitalino.configured(settings)


def _close(writer) -> None:  # noqa: ANN001
    """Close a log that the session never wrote to, and remove it (it holds no data)."""
    if writer is not None:
        writer.close()
        if writer.frames == 0:
            writer.path.unlink(missing_ok=True)
