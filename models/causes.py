"""The cause model: a scikit-learn Pipeline ranking the causes of docs/contracts.md §4.

``ColumnTransformer`` (median imputation + scaling for numbers,
one-hot for the two free categories) then ``CalibratedClassifierCV`` around a multinomial
logistic regression. A linear model keeps explanations honest: the "why" of a cause is the
inputs whose (standardised value × coefficient) pushed that cause up most, relative to the
other causes. The shipped artifact (``models/kb/cause_model.skops``) is saved with skops and
loaded with an explicit list of trusted types, never with unsafe pickle loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toetwitch.models.answers import validate_answers
from toetwitch.models.cohort import CAUSES, _spec_text, generate_cohort
from toetwitch.models.features import (
    CATEGORICAL_COLUMNS,
    FEATURE_LABELS,
    NUMERIC_COLUMNS,
    _is_missing,
    answers_to_row,
    rows_to_frame,
)

__all__ = [
    "MODEL_FILE",
    "META_FILE",
    "NEURO_GUARD_SYMPTOMS",
    "TRUSTED_TYPES",
    "build_pipeline",
    "default_model",
    "load_model",
    "rank_causes",
    "read_labelled_csv",
    "save_model",
    "train_model",
]

logger = logging.getLogger("toetwitch")

MODEL_FILE = "cause_model.skops"
META_FILE = "cause_model.json"

#: Types outside skops' default trust that the artifact may contain. Anything else in a file
#: is refused: a tampered or foreign file cannot make the loader run arbitrary code.
TRUSTED_TYPES: list[str] = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "numpy.dtype",
    "builtins.slice",
]

#: Symptoms that allow the neurological cause to rank first (weakness, wasting, bulbar,
#: breathing): without one of them it is never top-1 (docs/evidence.md §C2.2).
NEURO_GUARD_SYMPTOMS = (
    "foot_drop", "muscle_wasting", "trouble_swallowing", "slurred_speech",
    "breathless_lying_flat_or_at_rest", "face_arm_speech_sudden", "cannot_stand_or_walk",
)


#: Hyper-parameters of the calibrated logistic regression (also recorded in the training metadata).
_LOGREG_C = 0.3
_CALIBRATION_METHOD = "temperature"
_CALIBRATION_CV = 3


def build_pipeline(seed: int = 0):
    """An unfitted Pipeline: ColumnTransformer + calibrated multinomial logistic regression."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([
        # No missing-value indicators: leaving a field out carries no information about the
        # cause in the cohort (missing completely at random), so it must not move the ranking.
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ])
    columns = ColumnTransformer([
        ("num", numeric, NUMERIC_COLUMNS),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL_COLUMNS),
    ])
    classifier = CalibratedClassifierCV(
        LogisticRegression(C=_LOGREG_C, max_iter=5000, random_state=seed),
        method=_CALIBRATION_METHOD, cv=_CALIBRATION_CV,
    )
    return Pipeline([("columns", columns), ("classifier", classifier)])


def _metrics(model, X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import log_loss

    proba = model.predict_proba(X)
    classes = list(model.classes_)
    yi = np.array([classes.index(v) for v in y])
    order = np.argsort(-proba, axis=1, kind="stable")
    rank = np.argmax(order == yi[:, None], axis=1)
    onehot = np.eye(len(classes))[yi]
    per_class = {c: round(float(np.mean(order[yi == k, 0] == k)), 4) if np.any(yi == k) else None
                 for k, c in enumerate(classes)}
    # Expected calibration error of the top-1 probability, 10 equal-width bins.
    top_p = proba[np.arange(len(yi)), order[:, 0]]
    correct = order[:, 0] == yi
    bins = np.minimum((top_p * 10).astype(int), 9)
    ece = sum(abs(correct[bins == b].mean() - top_p[bins == b].mean()) * np.mean(bins == b)
              for b in range(10) if np.any(bins == b))
    return {
        "n": int(len(yi)),
        "top1_accuracy": round(float(np.mean(rank == 0)), 4),
        "top3_accuracy": round(float(np.mean(rank < 3)), 4),
        "log_loss": round(float(log_loss(yi, proba, labels=list(range(len(classes))))), 4),
        "brier": round(float(np.mean(np.sum((proba - onehot) ** 2, axis=1))), 4),
        "ece_top1": round(float(ece), 4),
        "recall_by_cause": per_class,
    }


def train_model(
    n: int | None = None, seed: int | None = None, labelled: pd.DataFrame | None = None,
    test_size: float = 0.2,
) -> tuple[Any, dict]:
    """Fit the cause model; returns (pipeline, metadata with versions and held-out metrics).

    Without ``labelled``, people are drawn from the synthetic cohort (``n``, ``seed`` default
    to the spec's); with it (a frame of feature columns + ``cause``), real labelled data are
    used. Either way ``test_size`` of the rows are held out (stratified, seeded) for metrics.
    """
    from sklearn.model_selection import train_test_split

    spec_seed = json.loads(_spec_text())["seed"]
    seed = spec_seed if seed is None else int(seed)
    if labelled is None:
        answers, sensors, labels = generate_cohort(n=n, seed=seed)
        X = rows_to_frame([answers_to_row(a, s) for a, s in zip(answers, sensors, strict=True)])
        y = np.array(labels, dtype=object)
        data = {"kind": "synthetic", "generator": "models/kb/cohort.json",
                "generator_sha256": hashlib.sha256(_spec_text().encode()).hexdigest(),
                "n": int(len(y))}
    else:
        X = labelled.drop(columns=["cause"])
        y = labelled["cause"].to_numpy(dtype=object)
        data = {"kind": "labelled", "n": int(len(y))}
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise ValueError("training data need at least two different causes")
    if counts.min() < 5:
        raise ValueError(f"each cause needs at least 5 labelled rows (fewest: {counts.idxmin()} with {counts.min()})")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    model = build_pipeline(seed)
    # One BLAS thread: multi-threaded BLAS on a busy 2-core machine is ~20x slower here, and a
    # fixed thread count keeps the floating-point results (and so the metrics) reproducible.
    from threadpoolctl import threadpool_limits  # comes with scikit-learn (the assess extra)

    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(X_tr, y_tr)
        metrics = _metrics(model, X_te, y_te)
    meta = {
        "model": "toetwitch cause model",
        "classes": [str(c) for c in model.classes_],
        "pipeline": "ColumnTransformer(median impute + StandardScaler | one-hot) -> "
                    f"CalibratedClassifierCV(LogisticRegression(C={_LOGREG_C}), "
                    f"method={_CALIBRATION_METHOD!r}, cv={_CALIBRATION_CV})",
        "seed": seed,
        "data": data,
        "test_size": test_size,
        "metrics_held_out": metrics,
        "versions": _versions(),
    }
    return model, meta


def _versions() -> dict[str, str]:
    import sklearn
    import skops

    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__, "skops": skops.__version__}


def save_model(model, meta: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``cause_model.skops`` and ``cause_model.json`` (metadata) into out_dir."""
    import skops.io as sio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    tmp = model_path.with_suffix(".skops.tmp")
    sio.dump(model, tmp, compression=8)  # zipfile.ZIP_DEFLATED
    untrusted = set(sio.get_untrusted_types(file=tmp)) - set(TRUSTED_TYPES)
    if untrusted:
        tmp.unlink()
        raise ValueError(f"the model contains types not in TRUSTED_TYPES: {sorted(untrusted)}")
    tmp.replace(model_path)
    meta = {**meta, "artifact_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()}
    meta_path = out_dir / META_FILE
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return model_path, meta_path


def load_model(path: str | Path) -> Any:
    """Load a cause model saved by :func:`save_model`, trusting only :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    path = Path(path)
    untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ValueError(f"{path}: refusing to load types outside the trusted list: {sorted(untrusted)}")
    return sio.load(path, trusted=TRUSTED_TYPES)


def user_data_dir() -> Path:
    """The person's toetwitch data folder: ``$TOETWITCH_DATA_DIR``, else the platform's user
    data folder (platformdirs; ``~/.local/share/toetwitch`` on Linux). ``toetwitch train``
    writes its model here, never into the installed package."""
    env = os.environ.get("TOETWITCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("toetwitch", appauthor=False)


def model_files() -> tuple[Path, Path, str]:
    """(model, metadata, where) of the cause model in use: a model trained into the user data
    folder first (both files present), else the shipped one; ``where`` is "user" or "shipped"."""
    user = user_data_dir()
    if (user / MODEL_FILE).is_file() and (user / META_FILE).is_file():
        return user / MODEL_FILE, user / META_FILE, "user"
    kb = Path(str(resources.files("toetwitch.models.kb")))
    return kb / MODEL_FILE, kb / META_FILE, "shipped"


@cache
def _load_cached(path: str, mtime_ns: int) -> Any:
    return load_model(path)


def default_model() -> Any:
    """The cause model in use (:func:`model_files`), loaded once per file version."""
    path, _, where = model_files()
    if not path.exists():
        raise FileNotFoundError(f"{path}: the {where} cause model is missing; run 'toetwitch train'")
    return _load_cached(str(path), path.stat().st_mtime_ns)


def default_model_info() -> dict:
    """What the result says about the model in use: data kind, seed, artifact hash, where."""
    _, meta_path, where = model_files()
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return {"data": meta["data"]["kind"], "n": meta["data"]["n"], "seed": meta["seed"],
            "artifact_sha256": meta.get("artifact_sha256"), "card": "models/MODEL_CARD.md",
            "model": where}


def read_labelled_csv(path: str | Path) -> pd.DataFrame:
    """Labelled training data: a ``cause`` column plus either an ``answers_json`` column (one
    answers object per row, docs/contracts.md §3, with optional ``sensor_*`` columns) or the model's
    feature columns (any subset; absent ones count as not reported)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read CSV ({exc})") from None
    if "cause" not in raw.columns:
        raise ValueError(f"{path}: missing column 'cause'")
    bad = sorted(set(raw["cause"].astype(str)) - set(CAUSES))
    if bad:
        raise ValueError(f"{path}: column cause: unknown labels {bad} (known: {', '.join(CAUSES)})")
    known = set(NUMERIC_COLUMNS) | set(CATEGORICAL_COLUMNS) | {"cause", "answers_json"}
    unknown = [c for c in raw.columns if c not in known]
    if unknown:
        raise ValueError(f"{path}: unknown columns {unknown}")
    if "answers_json" in raw.columns:
        rows = []
        for i, rec in raw.iterrows():
            try:
                answers = validate_answers(json.loads(rec["answers_json"]))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}: line {i + 2}: answers_json is not JSON ({exc})") from None
            except ValueError as exc:
                raise ValueError(f"{path}: line {i + 2}: {exc}") from None
            sensor = {c[len("sensor_"):]: rec[c] for c in raw.columns
                      if c.startswith("sensor_") and not pd.isna(rec[c])}
            rows.append(answers_to_row(answers, sensor))
        X = rows_to_frame(rows)
    else:
        X = rows_to_frame(raw.drop(columns=["cause"]).to_dict("records"))
    X["cause"] = raw["cause"].astype(str).to_numpy()
    return X


def _explain(model, z: np.ndarray, row: dict[str, Any], classes: list[str], top_k: int = 3) -> dict[str, list[str]]:
    """For each cause, the inputs that pushed it up most (logit contributions vs. other causes).

    z: the row after the ColumnTransformer, shape (d,).
    """
    columns = model.named_steps["columns"]
    clf = model.named_steps["classifier"]
    coefs = np.mean([cc.estimator.coef_ for cc in clf.calibrated_classifiers_], axis=0)  # (K, d)
    contrib = coefs * z
    contrib = contrib - contrib.mean(axis=0, keepdims=True)
    inputs = _input_of_columns(columns)
    out: dict[str, list[str]] = {}
    for k, cause in enumerate(classes):
        per_input: dict[str, float] = {}
        for j, inp in enumerate(inputs):
            if _is_missing(row.get(inp)):
                continue
            if inp.startswith(_PRESENCE_ONLY) and not row[inp]:
                continue  # "no diuretic" or "no calf twitching" is not a reason for anything
            per_input[inp] = per_input.get(inp, 0.0) + float(contrib[k, j])
        ranked = sorted(((v, i) for i, v in per_input.items() if v > 0.15), reverse=True)[:top_k]
        out[cause] = [_describe(inp, row[inp]) for _, inp in ranked]
    return out


def _input_of_columns(columns) -> list[str]:
    """For each transformed column, the model input it came from."""
    inputs: list[str] = []
    for nm in columns.get_feature_names_out():
        part, _, feat = nm.partition("__")
        if part == "cat":
            inputs.append(next(c for c in CATEGORICAL_COLUMNS if feat.startswith(c + "_")))
        else:
            inputs.append(feat)
    return inputs


_PRESENCE_ONLY = ("site_", "diet_", "cond_", "med_")


_VALUE_NAMES = {
    "exercise_level": ["none", "light", "moderate", "hard"],
    "weakness_level": ["none", "feels weak", "cannot do"],
    "back_pain_level": ["none", "one leg", "both legs"],
}
_NUMBER_COLUMNS = {
    "age_years", "sleep_hours", "stress_0_10", "caffeine_mg_per_day", "alcohol_units_per_week",
    "fluid_litres_per_day", "sitting_hours_per_day", "weight_loss_kg_3_months", "n_regions",
    "longest_cramp_min",
}


def _describe(column: str, value: Any) -> str:
    label = FEATURE_LABELS.get(column, column.replace("_", " "))
    if column in _VALUE_NAMES:
        return f"{label}: {_VALUE_NAMES[column][int(value)]}"
    if column == "log_twitching_days":
        return f"{label}: {math.expm1(value):.0f}"
    if isinstance(value, str):
        return f"{label}: {value.replace('_', ' ')}"
    if column in _NUMBER_COLUMNS or column.startswith("sensor_"):
        return f"{label}: {value:g}"
    return f"{label}: {'yes' if value else 'no'}"


def neuro_guard_open(answers: dict) -> bool:
    """True when the answers report weakness, wasting, bulbar or breathing features."""
    sym = answers.get("symptoms", {})
    if sym.get("weakness") in ("feels_weak", "cannot_do"):
        return True
    return any(sym.get(k) for k in NEURO_GUARD_SYMPTOMS)


def rank_causes(answers: dict, sensor: dict | None = None, model: Any = None) -> list[dict]:
    """Ranked causes ``[{"cause", "probability", "why"}]`` for validated answers.

    All contract labels are listed (a label the model was not trained on gets 0). The
    neurological cause is never ranked first without weakness, wasting, bulbar or breathing
    features: its probability is then capped below the next cause's and the rest renormalised;
    such entries carry ``"guarded": true``.
    """
    model = default_model() if model is None else model
    row = answers_to_row(answers, sensor)
    X = rows_to_frame([row])
    classes = [str(c) for c in model.classes_]
    z = model.named_steps["columns"].transform(X)  # once, for both the ranking and the why
    proba = dict(zip(classes, (float(p) for p in model.named_steps["classifier"].predict_proba(z)[0]), strict=True))
    for c in CAUSES:
        proba.setdefault(c, 0.0)
    guarded = False
    neuro = "neurological_disorder"
    if not neuro_guard_open(answers):
        best_other = max(p for c, p in proba.items() if c != neuro)
        if proba[neuro] >= best_other:
            proba[neuro] = best_other * 0.9
            total = sum(proba.values())
            proba = {c: p / total for c, p in proba.items()}
            guarded = True
    why = _explain(model, z[0], row, classes)
    ranked = sorted(CAUSES, key=lambda c: (-proba[c], CAUSES.index(c)))
    out = []
    for c in ranked:
        item: dict[str, Any] = {"cause": c, "probability": round(proba[c], 3), "why": why.get(c, [])}
        if guarded and c == neuro:
            item["guarded"] = True
        out.append(item)
    return out
