"""``toetwitch train``: (re)build the cause model, reproducibly."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toetwitch.pipeline.errors import UserError

HELP = "train the cause model (synthetic cohort by default, or --labelled FILE.csv)"
DESCRIPTION = (
    "Train the cause model of 'toetwitch assess'. Without --labelled, people are drawn from the "
    "documented synthetic cohort (models/kb/cohort.json): the same seed gives the same model and "
    "the same metrics. With --labelled FILE.csv, train on real labelled data: a 'cause' column "
    "(docs/contracts.md §4 labels) and either an 'answers_json' column (docs/contracts.md §3 answers per row, "
    "optional sensor_* columns) or the model's feature columns. Writes cause_model.skops and "
    "cause_model.json (versions and held-out metrics) into --out (default: your toetwitch data "
    "folder, e.g. ~/.local/share/toetwitch/ or $TOETWITCH_DATA_DIR; 'assess' uses a model there "
    "before the shipped one). The installed package is never written to."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", type=Path, default=None,
                        help="folder for cause_model.skops and cause_model.json (default: your toetwitch "
                             "data folder, where 'assess' looks first)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the cohort spec's)")
    parser.add_argument("--n", type=int, default=None, help="synthetic people to draw (default: the spec's)")
    parser.add_argument("--labelled", metavar="FILE.csv", type=Path, default=None,
                        help="train on real labelled data instead of the synthetic cohort")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")


def run(args: argparse.Namespace) -> int:
    from toetwitch.models.causes import read_labelled_csv, save_model, train_model, user_data_dir

    if args.n is not None and args.n < 100:
        raise UserError("--n: draw at least 100 people", 2)
    labelled = None
    if args.labelled is not None:
        if not args.labelled.exists():
            raise UserError(f"--labelled {args.labelled}: no such file", 2)
        try:
            labelled = read_labelled_csv(args.labelled)
        except ValueError as exc:
            raise UserError(str(exc), 2) from None
    out_dir = args.out
    if out_dir is None:
        out_dir = user_data_dir()
    try:
        model, meta = train_model(n=args.n, seed=args.seed, labelled=labelled)
    except ValueError as exc:
        raise UserError(f"training failed: {exc}", 1) from None
    model_path, meta_path = save_model(model, meta, out_dir)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    m = meta["metrics_held_out"]
    print(f"trained on {meta['data']['n']} {meta['data']['kind']} people (seed {meta['seed']})")
    print(f"held-out: top-1 {m['top1_accuracy']:.3f}  top-3 {m['top3_accuracy']:.3f}  "
          f"log-loss {m['log_loss']:.3f}  Brier {m['brier']:.3f}  ECE {m['ece_top1']:.3f}  (n={m['n']})")
    print(f"wrote {model_path} and {meta_path}")
    return 0
