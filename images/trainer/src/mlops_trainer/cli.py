"""`mlops-trainer <step> --workspace DIR [options]`: the command line the pipeline pods run."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from . import __version__, models, tracking
from .errors import EXIT_TRACKING, TrainerError

PROG = "mlops-trainer"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Training pipeline steps. Exit codes: 0 ok, 2 bad arguments, 3 workspace "
        "missing or a previous step has not run, 4 MLflow tracking server unset/unreachable/failing.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    def step(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--workspace", required=True, type=Path, help="run workspace directory (must exist)")
        p.add_argument(
            "--xcom-file",
            type=Path,
            help="also write the JSON summary here (KubernetesPodOperator: /airflow/xcom/return.json)",
        )
        return p

    p = step("prepare", "Load a data set bundled with scikit-learn and split it into train/test CSVs.")
    p.add_argument("--dataset", default="iris", choices=models.DATASETS)
    p.add_argument("--test-size", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=42)

    p = step("train", "Fit a model on the train split and log params, metrics and the model to MLflow.")
    p.add_argument("--model-type", default="logistic_regression", choices=sorted(models.MODEL_TYPES))
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="estimator parameter (repeatable)"
    )
    p.add_argument("--experiment", default="airflow-mlops", help="MLflow experiment name")
    p.add_argument("--run-name", default=None)
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="run tag (repeatable)")

    step("evaluate", "Score the trained model on the test split; log the metrics to its run.")

    p = step(
        "register",
        "Register the evaluated model as a new version with alias `candidate`; move `champion` to it "
        "only when it beats the current champion.",
    )
    p.add_argument("--model-name", required=True)
    p.add_argument("--metric", default="test_accuracy", choices=["test_accuracy", "test_f1_macro"])
    p.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        help="the candidate must beat the champion's metric by more than this to take `champion`",
    )

    p = step("predict", "Batch prediction with a registered model (default: models:/<name>@champion).")
    p.add_argument("--model-uri", default=None, help="e.g. models:/iris@champion (default from --model-name)")
    p.add_argument("--model-name", default=None, help="registered model (default: the one of register.json)")
    p.add_argument("--alias", default="champion")
    p.add_argument(
        "--input", type=Path, default=None, help="CSV with the feature columns (default: data/test.csv)"
    )
    p.add_argument("--output", type=Path, default=None, help="CSV to write (default: predictions.csv)")
    return parser


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TrainerError(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


def run(args: argparse.Namespace) -> dict[str, Any]:
    from . import steps
    from .workspace import Workspace

    ws = Workspace(args.workspace)
    if args.step == "prepare":
        return steps.prepare(ws, args.dataset, args.test_size, args.seed)
    if args.step == "train":
        return steps.train(
            ws,
            args.model_type,
            models.parse_params(args.param),
            args.experiment,
            args.run_name,
            _tags(args.tag),
        )
    if args.step == "evaluate":
        return steps.evaluate(ws)
    if args.step == "register":
        return steps.register(ws, args.model_name, args.metric, args.min_improvement)
    if args.step == "predict":
        return steps.predict(ws, args.model_uri, args.model_name, args.alias, args.input, args.output)
    raise AssertionError(args.step)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    tracking.configure_http_defaults()  # before mlflow is imported anywhere
    # Kubernetes stops a pod with SIGTERM: turn it into an exception so that `register` rolls
    # back a version it has created but not finished.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        summary = run(args)
    except TrainerError as exc:
        print(f"{PROG} {args.step}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            print(f"{PROG} {args.step}: error: MLflow: {exc.message}", file=sys.stderr)
            return EXIT_TRACKING
        raise
    text = json.dumps(summary, sort_keys=True, default=str)
    print(text)
    if args.xcom_file:
        args.xcom_file.parent.mkdir(parents=True, exist_ok=True)
        args.xcom_file.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
