"""The distribution: one top-level package, a light core, and it lives beside others.

Builds the wheel from a copy of the sources (nothing is written into the repository), installs
it into a fresh virtual environment next to another distribution that owns a top-level
``models`` package, and runs both. Offline: pip gets ``--no-index --no-deps`` and the fresh
environment borrows this one's installed dependencies through a path file.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLES

#: never in the core install (issue "one package, one name")
NOT_IN_CORE = {"pytest", "bumble", "matplotlib", "scikit-learn", "skops", "dask", "hypothesis",
               "ruff", "pylsl", "pyyaml"}
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "__init__.py", "__main__.py", "py.typed",
           "drivers", "pipeline", "models")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))",
         str(dist)], cwd=src, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dist / proc.stdout.strip().splitlines()[-1]


def _other_models_wheel(dist: Path) -> Path:
    """A minimal wheel of another distribution that owns the top-level name ``models``."""
    path = dist / "othermodels-1.0-py3-none-any.whl"
    info = "othermodels-1.0.dist-info"
    files = {
        "models/__init__.py": "OWNER = 'othermodels'\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: othermodels\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_wheel_installs_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"toetwitch", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "toetwitch/py.typed" in names and "toetwitch/__main__.py" in names
    assert "toetwitch/models/kb/cause_model.skops" in names
    assert "toetwitch/pipeline/present/report_template.html" in names
    # every package folder of the layers is in the wheel (pyproject lists them by hand)
    folders = {str(p.parent.relative_to(REPO)) for layer in ("drivers", "pipeline", "models")
               for p in (REPO / layer).rglob("__init__.py")}
    missing = sorted(f for f in folders if f"toetwitch/{f}/__init__.py" not in names)
    assert missing == []
    assert not any(n.startswith(("toetwitch/tests/", "toetwitch/bench/", "toetwitch/sample_data/"))
                   for n in names)


def test_core_requirements_are_light(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_string(z.read(meta_name).decode())
    core = set()
    for req in meta.get_all("Requires-Dist") or []:
        if "extra ==" in req:
            continue
        name = req.split(";")[0].strip()
        for stop in "<>=![ (":
            name = name.split(stop)[0]
        core.add(name.lower())
    assert core and not core & NOT_IN_CORE, sorted(core & NOT_IN_CORE)
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"emulator", "report", "assess", "train", "dask", "lsl", "all", "test"} <= extras


def test_wheel_works_beside_a_distribution_owning_models(wheel, tmp_path):
    env = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    other = _other_models_wheel(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                           "--no-index", "--no-deps", str(wheel), str(other)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # borrow numpy, scipy, pandas... from this environment (a path line: its .pth files, among
    # them the editable install's finder, are not run)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_outer.pth").write_text(sysconfig.get_path("purelib") + "\n")

    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)  # a folder named like a layer, where the user stands
    (work / "models" / "__init__.py").write_text("raise ImportError('the wrong models')\n")
    env_vars = {**os.environ, "PYTHONNOUSERSITE": "1"}
    check = ("import models, toetwitch, toetwitch.models as tm;"
             "assert models.OWNER == 'othermodels', models.__file__;"
             f"assert toetwitch.__file__.startswith({str(env)!r}), toetwitch.__file__;"
             "assert tm.assess is not None; print('ok')")
    proc = subprocess.run([str(py), "-I", "-c", check], cwd=work, capture_output=True, text=True,
                          env=env_vars)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]

    out = tmp_path / "out"
    proc = subprocess.run([str(py), "-m", "toetwitch", "analyse", str(SAMPLES / "rest_twitches.csv"),
                           "--out", str(out), "--no-journal"], cwd=work, capture_output=True,
                          text=True, env=env_vars)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "rest_twitches" / "events.csv").exists()
    proc = subprocess.run([str(env / "bin" / "toetwitch"), "--version"], cwd=work,
                          capture_output=True, text=True, env=env_vars)
    assert proc.returncode == 0 and proc.stdout.startswith("toetwitch "), proc.stderr


_BLOCK = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from toetwitch.pipeline.cli import main
sys.exit(main(sys.argv[2:]))
"""
#: what the core install leaves out (top-level import names)
EXTRAS_ONLY = "pytest,bumble,matplotlib,sklearn,skops,dask,distributed,threadpoolctl,yaml,pylsl"


def _core_only(argv: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK, EXTRAS_ONLY, *argv], cwd=tmp_path,
                          capture_output=True, text=True)


def test_analyse_and_replay_need_only_the_core(tmp_path):
    """Every bundled format analysed and replayed with the optional packages unimportable."""
    proc = _core_only(["analyse", str(SAMPLES), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "out").glob("*/events.csv"))) == len(list(SAMPLES.glob("*.truth.csv")))
    # the readers are shared with analyse (above); one replay shows the live path needs no extra
    proc = _core_only(["replay", str(SAMPLES / "rest_and_voluntary.edf"), "--speed", "max", "-q",
                       "--no-journal"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_missing_extra_is_named_in_one_line(tmp_path):
    proc = _core_only(["report", "--html", str(tmp_path / "r.html"),
                       "--recording", str(SAMPLES / "rest_twitches.csv")], tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'toetwitch[report]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _core_only(["monitor", "--emulate", str(SAMPLES / "rest_twitches.csv"), "--speed", "max",
                       "--no-journal"], tmp_path)
    assert proc.returncode != 0 and "toetwitch[emulator]" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and list(tmp_path.glob("*.ttlog")) == []
