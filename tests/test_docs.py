"""The repository is self-contained: nothing cites a document outside it, and every section of
docs/contracts.md and docs/evidence.md that the code and docs cite exists."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers import REPO

#: documents of the development material that are not in the repository
OUTSIDE = re.compile(r"signal-evidence|clinical-evidence|devices-evidence|ble-evidence|"
                     r"detection-anchors|style-and-speed|user-context\.md|\.\./shared|shared/docs|"
                     r"(?<![\w/.])contracts'? §")
#: tests and benches may read the real recordings beside the checkout and skip without them;
#: the sample builder regenerates sample_data/ from them (a development tool)
MAY_READ_REAL_DATA = ("tests/", "bench/", "sample_data/")
TEXT = {".py", ".md", ".json", ".txt", ".toml"}


def _files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted(f for f in set(out.split("\n"))
                  if f and f[f.rfind("."):] in TEXT and (REPO / f).is_file())


def test_nothing_cites_a_file_outside_the_repository():
    offenders = []
    for f in _files():
        if f.startswith(MAY_READ_REAL_DATA) and "evidence" not in f:
            continue
        for i, line in enumerate((REPO / f).read_text(encoding="utf-8").split("\n"), 1):
            if OUTSIDE.search(line) and f not in ("docs/evidence.md",):
                offenders.append(f"{f}:{i}: {line.strip()[:100]}")
    assert offenders == []


def test_cited_sections_exist():
    evidence = (REPO / "docs" / "evidence.md").read_text(encoding="utf-8")
    contracts = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    have_ev = set(re.findall(r"(?m)^#{2,4} ([SCB]\d+(?:\.\d+)?)", evidence))
    have_ev |= set(re.findall(r"\*\*([SCB]\d+\.\d+)\*\*", evidence))
    have_co = set(re.findall(r"(?m)^## (\d+)\.", contracts))
    missing = set()
    for f in _files():
        text = (REPO / f).read_text(encoding="utf-8")
        for sec in re.findall(r"§([SCB]\d+(?:\.\d+)?)", text):
            if f != "docs/evidence.md" and sec.rstrip(".") not in have_ev:
                missing.add(f"{f}: evidence §{sec}")
        for sec in re.findall(r"docs/contracts\.md §(\d+)", text):
            if sec not in have_co:
                missing.add(f"{f}: docs/contracts.md §{sec}")
    assert sorted(missing) == []
