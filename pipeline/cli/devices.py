"""``toetwitch devices``: every sensor toetwitch can talk to, and what it gets from each."""

from __future__ import annotations

import argparse

HELP = "list the supported sensors (profile, streams, rates, what each can detect)"
DESCRIPTION = """\
List every device profile toetwitch speaks: its name (for 'monitor --device NAME'), what it
streams, at which rates, and what toetwitch can detect from it. Profiles that are planned
but not written yet are listed as such."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from toetwitch.drivers.ble.profiles import NOT_YET_SUPPORTED, profiles
    from toetwitch.pipeline.present.capability import capability_lines

    # an accelerometer without EMG: say plainly what it can and cannot count (one wording,
    # shared with monitor and the reports)
    rows = [{"profile": p.name, "supported": True, "description": p.description,
             "streams": p.streams, "rates": p.rates, "detects": p.detects,
             "notes": capability_lines("+".join(p.stream_kinds))}
            for p in profiles().values()]
    rows += [{"profile": name, "supported": False, "description": "not supported yet",
              "streams": "", "rates": "", "detects": "", "notes": []} for name in NOT_YET_SUPPORTED]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        if not r["supported"]:
            continue
        note = "".join(f"  note:    {line}\n" for line in r["notes"])
        print(f"{r['profile']}\n  {r['description']}\n  streams: {r['streams']}\n"
              f"  rates:   {r['rates']}\n  detects: {r['detects']}\n{note}")
    if NOT_YET_SUPPORTED:
        print("not supported yet: " + ", ".join(NOT_YET_SUPPORTED))
    return 0
