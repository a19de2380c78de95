"""``sigalex tune``: hyperparameter search over a recipe's ``[tune]`` space (Optuna)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigError, SigalexError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search a recipe's [tune] space (Optuna), scoring trials on validation only",
        description="Train the recipe at points of its [tune] space, score each on the "
        "validation set of its own split (the test set is never read by the search), prune "
        "trials that fall behind, and write tune/<study>/ (beside output.dir) with study.db, "
        "trials.csv, best.toml, summary.json and plots/. When the study has its trials, the "
        "best recipe is trained once more and scored on the test set. Rerunning the same "
        "command continues the study; workers given the same --storage and --study share it.",
        epilog="Examples: sigalex tune pipelines/eeg-seizure.toml --trials 40 --set "
        "'tune.train.lr={low=1e-5, high=1e-3, log=true}'; sigalex tune r.toml --storage "
        "postgresql://user@host/db --study bonn-stft (on every machine); "
        "sigalex tune r.toml --final",
    )
    p.add_argument("config", type=Path, help="recipe (TOML) with a [tune] section")
    p.add_argument("--trials", type=int, help="trials of the whole study (default tune.trials)")
    p.add_argument("--timeout-s", type=float, help="start no trial after this many seconds")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage: sqlite:///f.db, postgresql://…, mysql://…, or journal:PATH "
        "(default: sqlite in the tune folder)",
    )
    p.add_argument("--study", metavar="NAME", help="study name (default: the recipe's name)")
    p.add_argument("--out", type=Path, metavar="DIR", help="tune folder (default tune/<study>)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override a recipe value (tune.trials=10, tune.train.lr={low=1e-4, high=0.1})",
    )  # fmt: skip
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the recipe's)")
    p.add_argument(
        "--final",
        action="store_true",
        help="start no trial: train the best trial's recipe and score the test set",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    if importlib.util.find_spec("optuna") is None:
        raise SigalexError("sigalex tune needs optuna: pip install 'sigalex[tune]'")
    from ..config import load_config

    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: must be >= 1")
    if args.timeout_s is not None and not args.timeout_s > 0:
        raise ConfigError(f"--timeout-s {args.timeout_s}: must be > 0")
    cfg = load_config(args.config, args.overrides)
    from ..train.tune import tune

    result = tune(
        cfg, trials=args.trials, timeout_s=args.timeout_s, storage=args.storage,
        study_name=args.study, out=args.out, device=args.device, final=args.final,
    )  # fmt: skip
    final = result.final
    print(f"wrote {result.tune_dir}")
    if final:
        test = ", ".join(f"{k} {v:.4f}" for k, v in final["test"].items() if v is not None)
        print(f"best trial {final['trial']}: test {test} ({final['run_dir']})")
    return 0
