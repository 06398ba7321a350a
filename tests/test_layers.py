"""The design card's layering: drivers and models import neither each other nor pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"drivers": {"pipeline", "models"}, "models": {"pipeline", "drivers"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    found = {str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package]) for f in files}
    offenders = {name: bad for name, bad in found.items() if bad}
    assert offenders == {}


def test_public_python_api_of_the_contract():
    """Contracts §5, verbatim usage."""
    import numpy as np

    from toetwitch.drivers import Recording, read_recording  # noqa: F401
    from toetwitch.pipeline import analyse

    rng = np.random.default_rng(0)
    rec = Recording(emg_uv=rng.normal(0, 2, 20_000), fs_emg_hz=2000.0,
                    acc_g=np.tile([0.0, 0.0, 1.0], (2_000, 1)) + rng.normal(0, 0.001, (2_000, 3)),
                    fs_acc_hz=200.0)
    result = analyse(rec)
    for col in ("time_s", "source", "type"):
        assert col in result.events.columns
    for col in ("start_s", "end_s", "twitches"):
        assert col in result.episodes.columns
    assert isinstance(result.summary, dict) and result.summary["duration_s"] == 10.0
