"""Live-path latency and CPU: packet arrival -> twitch reported, and CPU per hour of streaming.

Run from the repository root::

    .venv/bin/python bench/latency.py                 # 10 min of 2 kHz EMG + 200 Hz ACC
    .venv/bin/python bench/latency.py --minutes 60 --write-docs   # figures into docs/live.md

What is measured is toetwitch's own live path, :class:`toetwitch.pipeline.run.live.LiveSession`: every
notification is appended to a real packet log (a temporary ``.ttlog``), decoded
(:class:`toetwitch.drivers.ble.codec.Decoder`) and fed in 200-ms blocks to the one detector. The BLE
stack itself is left out: on a real machine it is BlueZ/CoreBluetooth (another process); the
emulator's bumble stack is a test tool and costs far more than a real one.

* Input: ``toetwitch.drivers.simulate.simulate_recording`` (seeded; twitches at rest, voluntary bursts,
  limb movements), quantised like a sensor ADC (0.1 µV, 1 mg steps) and cut into MTU-247
  profile-v1 packets by :func:`toetwitch.drivers.ble.codec.packetize`.
* Clock: packets are fed as fast as the CPU goes, but each carries a *virtual* arrival time =
  the time its last sample is taken + ``--link-ms`` (radio and host-stack delay). An event
  reported while packet *j* is handled is stamped ``arrival(j) + the real CPU time spent on
  packet j so far``. Latency = that stamp − arrival of the packet that carried the event's
  sample. It is dominated by the detector's look-ahead (the isolation rule needs ~250 ms of
  signal after a twitch) and the block size, not by CPU.
* Events settled only by the end of the stream are left out of the latency figures.
* CPU: ``time.process_time()`` over the whole feed (decode + log + detect), per hour of signal
  and as a share of one core.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import parse_sets  # noqa: E402
from toetwitch.drivers.ble import profile_v1 as pv1  # noqa: E402
from toetwitch.drivers.ble.client import LinkItem  # noqa: E402
from toetwitch.drivers.ble.codec import packetize  # noqa: E402
from toetwitch.drivers.ble.packetlog import PacketLogWriter  # noqa: E402
from toetwitch.drivers.simulate import simulate_recording  # noqa: E402
from toetwitch.pipeline.detect.config import DetectorConfig  # noqa: E402
from toetwitch.pipeline.run.live import LiveSession  # noqa: E402

DOCS = REPO / "docs" / "live.md"
START, END = "<!-- bench:latency:start -->", "<!-- bench:latency:end -->"


def make_packets(minutes: float, seed: int, fs_emg: float, fs_acc: float):
    rec, truth = simulate_recording(
        minutes * 60.0, fs_emg_hz=fs_emg, fs_acc_hz=fs_acc, seed=seed, twitch_rate_per_min=20.0,
        voluntary_bursts=max(1, int(minutes)), limb_movements=max(1, int(minutes // 5)),
        name="bench",
    )
    emg = pv1.StreamInfo(pv1.STREAM_EMG, "emg", 1, fs_emg, "i16", 0.1)
    acc = pv1.StreamInfo(pv1.STREAM_ACC, "acc", 3, fs_acc, "i16", 1e-3)
    info = pv1.DeviceInfo(streams=(emg, acc), extra={"start_time": None})
    arrays = {emg.stream_id: rec.emg_uv[:, None], acc.stream_id: rec.acc_g}
    packets = []
    for sid, i, n, data in packetize(info, arrays):
        fs = fs_emg if sid == emg.stream_id else fs_acc
        ready_s = (i + n) / fs if n else len(rec.emg_uv) / fs_emg
        packets.append((ready_s, data))
    return info, packets, int((truth["kind"] == "fasciculation").sum())


def _percentile(a: np.ndarray, q: float) -> float:
    """``q``-th percentile of ``a`` (100 = its maximum), NaN when empty."""
    return float(np.percentile(a, q)) if len(a) else float("nan")


def run(minutes: float, seed: int, link_ms: float, block_ms: float | None, fs_emg: float, fs_acc: float,
        overrides: dict | None = None):
    info, packets, n_truth = make_packets(minutes, seed, fs_emg, fs_acc)
    reported: list[tuple[float, int, float, str]] = []  # (time_s, report ns, ready_s, type)
    current = {"arrival": 0, "t0": 0, "ready": 0.0}

    def now_ns() -> int:
        """Virtual time: the current packet's arrival plus the processing time since."""
        return current["arrival"] + (time.perf_counter_ns() - current["t0"])

    def on_events(new) -> None:  # noqa: ANN001
        now = now_ns()
        for t, typ in zip(new["time_s"], new["type"], strict=True):
            reported.append((float(t), now, current["ready"], typ))

    with tempfile.TemporaryDirectory() as tmp:
        log = PacketLogWriter(Path(tmp) / "bench.ttlog")
        config = DetectorConfig().with_(**overrides) if overrides else None
        withdrawn: list[tuple[float, str]] = []
        shown_at: list[tuple[float, float]] = []  # (time_s, virtual report ns)

        def on_shown(new) -> None:  # noqa: ANN001
            now = now_ns()
            shown_at.extend((float(t), now) for t in new["time_s"])

        session = LiveSession("bench", log, block_s=None if block_ms is None else block_ms / 1000.0,
                              keep_arrivals=True,
                              on_events=on_events, config=config,
                              on_provisional=on_shown, on_withdrawn=withdrawn.extend)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        session.handle(LinkItem("info", pv1.encode_info(info), time.time_ns(), 0))
        link_ns = int(link_ms * 1e6)
        for ready_s, data in packets:
            arrival = int(ready_s * 1e9) + link_ns
            current["arrival"], current["t0"], current["ready"] = arrival, time.perf_counter_ns(), ready_s
            session.handle(LinkItem("packet", data, 1_700_000_000_000_000_000 + arrival, arrival))
        streaming = list(reported)
        result = session.finish()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        log_bytes = log.bytes_written
    lat_ms, ahead_ms = [], []
    for t, rep_ns, ready_s, typ in streaming:
        if typ != "fasciculation":
            continue  # movements and cramps are reported when they end, by definition
        src_arrival = session.arrival_of("emg", t) or session.arrival_of("acc", t)
        if src_arrival is not None:
            lat_ms.append((rep_ns - src_arrival) / 1e6)
            ahead_ms.append((ready_s - t) * 1e3)  # signal after the twitch that settled it
    lat, ahead = np.array(lat_ms), np.array(ahead_ms)
    # shown while being checked: from the packet that carried the twitch to it being shown
    shown = np.array([(rep - session.arrival_of("emg", t)) / 1e6 for t, rep in shown_at])
    n_shown = len(shown_at)
    final_twitches = set(result.twitches["time_s"].tolist())
    shown_kept = sum(t in final_twitches for t, _r in shown_at)
    duration_s = minutes * 60.0
    return {
        "shown": n_shown,
        "shown_withdrawn": len(withdrawn),
        "shown_kept": shown_kept,
        "twitches_not_shown_first": len(final_twitches) - shown_kept,
        "shown_p50_ms": _percentile(shown, 50),
        "shown_p95_ms": _percentile(shown, 95),
        "shown_max_ms": _percentile(shown, 100),
        "withdrawn_reasons": dict(sorted(Counter(r for _t, r in withdrawn).items())),
        "minutes": minutes,
        "fs_emg_hz": fs_emg,
        "fs_acc_hz": fs_acc,
        "packets": len(packets),
        "packets_per_s": len(packets) / duration_s,
        "events_streamed": len(lat),
        "events_total": len(result.events),
        "twitches": int(result.summary["twitches"]),
        "twitches_true": n_truth,
        "p50_ms": _percentile(lat, 50),
        "p95_ms": _percentile(lat, 95),
        "max_ms": _percentile(lat, 100),
        "ahead_p50_ms": _percentile(ahead, 50),
        "ahead_p95_ms": _percentile(ahead, 95),
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_s_per_hour": cpu * 3600.0 / duration_s,
        "core_percent": 100.0 * cpu / duration_s,
        "log_mb_per_hour": log_bytes / 1e6 * 3600.0 / duration_s,
        "block_ms": session.feed_s * 1000.0,
        "link_ms": link_ms,
    }


def markdown(r: dict) -> str:
    return "\n".join([
        f"Measured by `bench/latency.py` on {r['minutes']:g} min of simulated "
        f"{r['fs_emg_hz']:g} Hz EMG + {r['fs_acc_hz']:g} Hz accelerometer "
        f"({r['packets_per_s']:.1f} packets/s at MTU 247), {r['block_ms']:g}-ms detector "
        f"blocks, {r['link_ms']:g} ms assumed radio + stack delay, on a 2-core CI-sized VM:",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| packet arrival -> twitch shown (checking), p50 | {r['shown_p50_ms']:.0f} ms | |",
        f"| packet arrival -> twitch shown (checking), p95 | {r['shown_p95_ms']:.0f} ms | <= 500 ms |",
        f"| worst twitch shown | {r['shown_max_ms']:.0f} ms | |",
        f"| shown, then not counted (later rules) | {r['shown_withdrawn']} of {r['shown']} "
        f"({100 * r['shown_withdrawn'] / max(r['shown'], 1):.1f} %) | |",
        f"| counted without being shown first | {r['twitches_not_shown_first']} | 0 |",
        f"| packet arrival -> twitch settled (counted), p50 | {r['p50_ms']:.0f} ms | |",
        f"| packet arrival -> twitch settled (counted), p95 | {r['p95_ms']:.0f} ms | |",
        f"| worst twitch settled | {r['max_ms']:.0f} ms | |",
        f"| signal the detector needs after a twitch to settle it, p50 / p95 | "
        f"{r['ahead_p50_ms']:.0f} / {r['ahead_p95_ms']:.0f} ms | |",
        f"| CPU per hour of streaming (decode + log + detect) | {r['cpu_s_per_hour']:.1f} s "
        f"({r['core_percent']:.2f} % of one core) | < 1 % of one core |",
        f"| packet log size | {r['log_mb_per_hour']:.1f} MB per hour | |",
        "",
        f"({r['events_streamed']} twitches reported while streaming; {r['twitches']} counted "
        f"in all, {r['twitches_true']} simulated.)",
    ])


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    block = f"{START}\n{text}\n{END}"
    if START in doc:
        doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, doc, flags=re.S)
    else:
        doc += "\n" + block + "\n"
    DOCS.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--link-ms", type=float, default=15.0)
    ap.add_argument("--block-ms", type=float, default=None,
                    help="signal per detector call (default: the detector's block)")
    ap.add_argument("--fs-emg", type=float, default=2000.0)
    ap.add_argument("--fs-acc", type=float, default=200.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="DetectorConfig override, e.g. --set train_gap_ms=300 (repeatable)")
    ap.add_argument("--write-docs", action="store_true", help=f"put the figures into {DOCS.name}")
    args = ap.parse_args(argv)
    overrides = parse_sets(args.set)
    r = run(args.minutes, args.seed, args.link_ms, args.block_ms, args.fs_emg, args.fs_acc,
            overrides)
    text = markdown(r)
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"\nwrote the figures into {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
