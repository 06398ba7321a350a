"""The design card's layering, and the pipeline's sub-layers.

drivers/ and models/ import neither each other nor pipeline/. Inside pipeline/: detect/ (signal
to events, no I/O) imports nothing of run/, store/, present/ or cli/; store/ (the only SQL) and
run/ nothing of each other, present/ or cli/; present/ nothing of run/ or cli/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("drivers", "models", "pipeline")
#: folder -> sub-packages of toetwitch it must not import
FORBIDDEN = {
    "drivers": {"pipeline", "models"},
    "models": {"pipeline", "drivers"},
    "pipeline/detect": {"toetwitch.pipeline.run", "toetwitch.pipeline.store", "toetwitch.pipeline.present", "toetwitch.pipeline.cli.main"},
    "pipeline/store": {"toetwitch.pipeline.run", "toetwitch.pipeline.detect", "toetwitch.pipeline.present", "toetwitch.pipeline.cli.main"},
    "pipeline/run": {"toetwitch.pipeline.store", "toetwitch.pipeline.present", "toetwitch.pipeline.cli.main"},
    "pipeline/present": {"toetwitch.pipeline.run", "toetwitch.pipeline.cli.main"},
}


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute, as written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _toetwitch_parts(modules: set[str]) -> set[str]:
    """``toetwitch.pipeline.run.batch`` -> ``toetwitch.pipeline.run.batch`` (and all its prefixes)."""
    out = set()
    for m in modules:
        if m.startswith("toetwitch."):
            parts = m.split(".")[1:]
            out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return out


def _py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(folder):
    files = _py(folder)
    assert files, f"{folder}/ has no modules"
    found = {str(f.relative_to(ROOT)): sorted(_toetwitch_parts(_modules(f)) & FORBIDDEN[folder])
             for f in files}
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_one_import_name():
    """Nothing imports the layers as top-level packages (they are installed only under
    ``toetwitch``), and tests import shared helpers from a module, not from conftest."""
    files = [ROOT / "__init__.py", ROOT / "__main__.py"]
    for folder in (*LAYERS, "tests", "bench"):
        files += _py(folder)
    offenders = {}
    for f in files:
        bad = sorted(m for m in _modules(f) if m.split(".")[0] in (*LAYERS, "conftest"))
        if bad:
            offenders[str(f.relative_to(ROOT))] = bad
    assert offenders == {}


def _all_imports(path: Path) -> set[str]:
    """toetwitch modules ``path`` imports when run, anywhere (deferred imports in functions
    included; ``if TYPE_CHECKING:`` blocks, for type hints only, not)."""
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toetwitch."):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("toetwitch.")}
    return out


def test_no_import_cycles():
    """Not even through deferred imports (the journal and its history once imported each other).
    Importing one's own parent package (``toetwitch.pipeline`` from inside it) does not count."""
    graph: dict[str, set[str]] = {}
    for layer in LAYERS:
        for f in _py(layer):
            mod = "toetwitch." + ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            graph[mod] = {m for m in _all_imports(f) if m != mod and not mod.startswith(m + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep in graph and dep not in state:
                visit(dep, path + [dep])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


def test_sql_only_in_store():
    users = sorted(str(f.relative_to(ROOT)) for layer in LAYERS for f in _py(layer)
                   if "sqlite3" in {m.split(".")[0] for m in _modules(f)})
    assert users and all(u.startswith("pipeline/store/") for u in users), users


def test_public_python_api_of_the_contract():
    """docs/contracts.md §5, verbatim usage: everything from ``toetwitch`` itself."""
    import numpy as np

    import toetwitch as tt

    rng = np.random.default_rng(0)
    rec = tt.Recording(emg_uv=rng.normal(0, 2, 20_000), fs_emg_hz=2000.0,
                       acc_g=np.tile([0.0, 0.0, 1.0], (2_000, 1)) + rng.normal(0, 0.001, (2_000, 3)),
                       fs_acc_hz=200.0)
    result = tt.analyse(rec)
    for col in ("time_s", "source", "type"):
        assert col in result.events.columns
    for col in ("start_s", "end_s", "twitches"):
        assert col in result.episodes.columns
    assert isinstance(result.summary, dict) and result.summary["duration_s"] == 10.0
    sa = tt.StreamingAnalyser(fs_emg_hz=2000.0, fs_acc_hz=200.0)
    sa.push(emg_uv=rec.emg_uv, acc_g=rec.acc_g)
    streamed = sa.finish()
    assert streamed.events["time_s"].tolist() == result.events["time_s"].tolist()
    assert callable(tt.read_recording) and callable(tt.open_recording)
    assert callable(tt.analyse_source) and tt.DetectorConfig().__class__.__name__ == "DetectorConfig"
    assert isinstance(tt.AnalysisResult, type)


def test_one_exception_root():
    import toetwitch as tt
    from toetwitch.drivers.ble.client import BluetoothUnavailableError
    from toetwitch.drivers.errors import DriverError, RecordingError
    from toetwitch.models import AnswersError
    from toetwitch.models.errors import ModelError
    from toetwitch.pipeline.errors import PipelineError, UserError

    for layer_root in (DriverError, ModelError, PipelineError):
        assert issubclass(layer_root, tt.ToetwitchError)
    assert issubclass(RecordingError, DriverError) and issubclass(RecordingError, ValueError)
    assert issubclass(BluetoothUnavailableError, DriverError)
    assert issubclass(AnswersError, ModelError) and issubclass(UserError, PipelineError)
