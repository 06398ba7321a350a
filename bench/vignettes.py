"""Score toetwitch's triage and cause ranking on the clinical vignette set.

Usage::

    .venv/bin/python bench/vignettes.py            # table + per-vignette misses
    .venv/bin/python bench/vignettes.py --markdown # the table as Markdown (docs/assess.md)
    .venv/bin/python bench/vignettes.py --json     # all figures as JSON

The vignettes (``bench/vignettes.json``) were written from docs/evidence.md, 12 per level,
each with the source that fixes its gold level and the evidence behind its gold cause.
Scoring follows the symptom-checker literature (docs/evidence.md §C3.3): exact triage, under-
and over-triage, "safe" triage (Gilbert et al. 2020: at the gold level, more cautious, or at
most one level less cautious), urgent cases under-triaged, self-care kept self-care, and
top-1/top-3 cause.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from toetwitch.models import LEVELS
from toetwitch.models.escalation import level_rank

HERE = Path(__file__).resolve().parent
VIGNETTES = HERE / "vignettes.json"

#: Published figures (docs/evidence.md §C3.2) beside which toetwitch's are shown.
PUBLISHED = [
    ("Symptom checkers, Semigran BMJ 2015 (45 vignettes)", "57%", "self-care 33%", "34% (top-1)"),
    ("Symptom checkers, Hill MJA 2020 (48 vignettes)", "49%", "self-care 40%", "36% / 52%"),
    ("Symptom checkers 2020, Schmieding JMIR 2022", "55.8%", "missed >40% of emergencies", "-"),
    ("Ada, Gilbert BMJ Open 2020 (200 vignettes)", "safe 97.0%", "-", "top-3 70.5%"),
    ("GPs, Gilbert BMJ Open 2020", "safe 97.0%", "-", "top-3 82.1%"),
    ("Physicians, Levine 2023 (48 vignettes, 4 levels)", "91%", "-", "top-3 96%"),
    ("Laypeople, Levine 2023", "74%", "-", "top-3 54%"),
]


def load_vignettes(path: Path = VIGNETTES) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["vignettes"]


def score(vignettes: list[dict], assess: Callable[[dict, dict | None], dict]) -> dict:
    """Run ``assess(answers, sensor)`` on every vignette and compute the bench figures."""
    rows = []
    for v in vignettes:
        result = assess(v["answers"], v.get("sensor"))
        ranked = [c["cause"] for c in result["causes"]]
        level = result["escalation"]["level"]
        rows.append({
            "id": v["id"], "title": v["title"], "gold_level": v["gold_level"], "level": level,
            "gold_cause": v["gold_cause"], "top3": ranked[:3],
            "cause_rank": ranked.index(v["gold_cause"]) + 1 if v["gold_cause"] in ranked else None,
            "rules": [r["rule"] for r in result["escalation"]["reasons"]],
        })
    n = len(rows)
    diff = [level_rank(r["level"]) - level_rank(r["gold_level"]) for r in rows]
    by_level = {}
    for lv in LEVELS:
        sub = [r for r in rows if r["gold_level"] == lv]
        by_level[lv] = {"n": len(sub), "exact": sum(r["level"] == lv for r in sub)}
    urgent = [r for r in rows if r["gold_level"] == "urgent"]
    return {
        "n": n,
        "exact_triage": sum(d == 0 for d in diff) / n,
        "under_triage": sum(d < 0 for d in diff) / n,
        "over_triage": sum(d > 0 for d in diff) / n,
        "safe_triage": sum(d >= -1 for d in diff) / n,
        "urgent_under_triaged": sum(r["level"] != "urgent" for r in urgent),
        "n_urgent": len(urgent),
        "self_care_kept": by_level["self_care"]["exact"] / max(by_level["self_care"]["n"], 1),
        "by_level": by_level,
        "top1_cause": sum(r["cause_rank"] == 1 for r in rows) / n,
        "top3_cause": sum(r["cause_rank"] is not None and r["cause_rank"] <= 3 for r in rows) / n,
        "rows": rows,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table_markdown(s: dict) -> str:
    """The comparison table as Markdown."""
    lines = [
        "| system | exact triage | other triage figures | cause (top-1 / top-3) |",
        "|---|---|---|---|",
        f"| **toetwitch** ({s['n']} toe-twitch vignettes, 12 per level) | **{_pct(s['exact_triage'])}** "
        f"| under {_pct(s['under_triage'])}, over {_pct(s['over_triage'])}, safe {_pct(s['safe_triage'])}; "
        f"urgent under-triaged {s['urgent_under_triaged']}/{s['n_urgent']}; self-care kept {_pct(s['self_care_kept'])} "
        f"| {_pct(s['top1_cause'])} / {_pct(s['top3_cause'])} |",
    ]
    for name, triage, other, cause in PUBLISHED:
        lines.append(f"| {name} | {triage} | {other} | {cause} |")
    return "\n".join(lines) + "\n"


def table_text(s: dict) -> str:
    out = [f"toetwitch on {s['n']} vignettes (12 per level)",
           f"  exact triage      {_pct(s['exact_triage'])}   (target >= 90%)",
           f"  under-triage      {_pct(s['under_triage'])}",
           f"  over-triage       {_pct(s['over_triage'])}",
           f"  safe triage       {_pct(s['safe_triage'])}   (Gilbert 2020 definition)",
           f"  urgent missed     {s['urgent_under_triaged']}/{s['n_urgent']}   (target 0)",
           f"  self-care kept    {_pct(s['self_care_kept'])}   (target >= 85%)",
           f"  cause top-1       {_pct(s['top1_cause'])}",
           f"  cause top-3       {_pct(s['top3_cause'])}   (target >= 90%)",
           "  by gold level: " + ", ".join(f"{lv} {d['exact']}/{d['n']}" for lv, d in s["by_level"].items()),
           "", "published figures (docs/evidence.md §C3.2):"]
    for name, triage, other, cause in PUBLISHED:
        out.append(f"  {name:<52} triage {triage:<11} {other:<28} cause {cause}")
    misses = [r for r in s["rows"] if r["level"] != r["gold_level"] or (r["cause_rank"] or 99) > 3]
    if misses:
        out += ["", "misses (level or cause outside top 3):"]
        for r in misses:
            out.append(f"  {r['id']} {r['title']}: level {r['level']} (gold {r['gold_level']}, rules {','.join(r['rules'])}); "
                       f"cause {r['gold_cause']} ranked {r['cause_rank']} (top 3: {', '.join(r['top3'])})")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    parser.add_argument("--json", action="store_true", help="print all figures as JSON")
    args = parser.parse_args(argv)
    from toetwitch.models import assess

    s = score(load_vignettes(), assess)
    if args.json:
        print(json.dumps(s, indent=2))
    elif args.markdown:
        print(table_markdown(s), end="")
    else:
        print(table_text(s), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
