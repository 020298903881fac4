"""The ``lossearch`` command: ``demo``, ``optimize``, ``worker``, ``export``, ``report``,
``sync-mlflow``, ``spaces``."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import os
import shutil
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A worker trains in child processes replaced this often: flat memory over a long
# search for ~8 s of start-up per replacement (figures in BENCHMARKS.md, "Memory").
WORKER_RECYCLE_EVERY = 25


def _load_attr(spec: str, option: str):
    """``package.module:name`` or ``path/to/file.py:name``."""
    if ":" not in spec:
        raise ValueError(
            f"{option}: expected MODULE:NAME (e.g. mymodels:build_model), got {spec!r}."
        )
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise ValueError(f"{option}: no such file {module_name!r}.")
            # importable by name, so a child process (--recycle-every) can load it too
            sys.path.insert(0, str(path.resolve().parent))
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[path.stem] = module
            module_spec.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{option}: cannot import {module_name!r} ({exc}).") from None
    except Exception as exc:  # a syntax error in it, or an exception while it imports
        raise ValueError(
            f"{option}: importing {module_name!r} failed ({type(exc).__name__}: {exc})."
        ) from None
    if not hasattr(module, attr):
        raise ValueError(f"{option}: {module_name!r} has no attribute {attr!r}.")
    return getattr(module, attr)


def _search_arguments(
    parser: argparse.ArgumentParser, trials: int, epochs: int, space: str, *, worker=False
):
    """The arguments of every search command; a worker must name a shared study, and
    samples on a seed of its own unless given one."""
    parser.add_argument("--space", default=space, help="bundled name or YAML path")
    parser.add_argument("--objective", default=None, help="e.g. balanced_accuracy, pr_auc")
    parser.add_argument("--trials", type=POSITIVE, default=trials, help="finished trials to run")
    parser.add_argument("--epochs", type=POSITIVE, default=epochs, help="epochs per trial")
    parser.add_argument(
        "--timeout", type=SECONDS, default=None, help="seconds after which no trial starts"
    )
    parser.add_argument("--batch-size", type=POSITIVE, default=32, help="batch size of fit")
    parser.add_argument(
        "--cv", type=_folds, default="auto", help="folds, 'auto' or 0 for one hold-out split"
    )
    parser.add_argument(
        "--validation", type=FRACTION, default=None, help="hold-out fraction (None: 0.2)"
    )
    parser.add_argument("--storage", default=None, required=worker, help="Optuna storage URL")
    parser.add_argument("--study", default=None, required=worker, help="study name (resumable)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    parser.add_argument("--experiment", default="lossearch", help="MLflow experiment name")
    parser.add_argument(
        "--seed", type=int, default=None if worker else 0, help="seeds splits and trials"
    )
    parser.add_argument(
        "-o", "--output", default="best_loss.json", help="where to write the best loss"
    )
    parser.add_argument("--report", default=None, help="also write an HTML report to this path")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--selection", default="robust", choices=["robust", "best"], help="see optimize()"
    )
    parser.add_argument(
        "--confirm-seeds",
        type=NON_NEGATIVE,
        default=2,
        help="extra seeds each candidate is retrained on before the pick (0: none)",
    )
    parser.add_argument(
        "--register-model",
        default=None,
        metavar="NAME",
        help="retrain the pick, log it to MLflow and register it in the model registry as NAME",
    )
    parser.add_argument(
        "--recycle-every",
        type=NON_NEGATIVE,
        default=WORKER_RECYCLE_EVERY if worker else 0,
        metavar="N",
        help="train in a child process replaced every N trainings, for flat memory (0: in "
        "this process)",
    )
    parser.add_argument(
        "--no-decision",
        action="store_true",
        help="keep arg-max / 0.5 instead of tuning a decision rule (see optimize(decision=))",
    )


def _number(kind, low: float, low_open: bool = False, high: float | None = None):
    """An argparse type: ``kind`` in ``[low, high)`` (``(low, ...`` when ``low_open``)."""
    below = f"> {low}" if low_open else f">= {low}"
    expected = f"a number {below}" + (f" and < {high}" if high is not None else "")
    if kind is int:
        expected = expected.replace("a number", "a whole number")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (low_open and value == low) or (high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE, NON_NEGATIVE = _number(int, 1), _number(int, 0)
SECONDS, FRACTION = _number(float, 0, low_open=True), _number(float, 0, True, high=1)


def _folds(text: str) -> int | str:
    """``--cv``: a number of folds or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of folds or 'auto', got {text!r}"
        ) from None


def _worker_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--threads", type=POSITIVE, default=None, help="numeric threads per worker")
    parser.add_argument(
        "--heartbeat-interval",
        type=POSITIVE,
        default=None,
        help="seconds between heartbeats of a running trial (RDB storages; default 30)",
    )
    parser.add_argument(
        "--grace-period",
        type=POSITIVE,
        default=None,
        help="seconds without heartbeat before a trial is failed and retried (default 4x)",
    )


def _storage(args):
    from lossearch.storages import HEARTBEAT_INTERVAL, open_storage

    return open_storage(
        args.storage,
        heartbeat_interval=args.heartbeat_interval or HEARTBEAT_INTERVAL,
        grace_period=args.grace_period,
    )


def _check_output(option: str, path: str | None) -> None:
    """Before the search, not after it: a path the results cannot be written to."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: {path!r} is a folder; name a file in it.")
    if not target.parent.is_dir():
        raise ValueError(f"{option}: the folder {str(target.parent)!r} does not exist.")


def _run_search(build_model, data, args, refit: bool, class_names=None, storage=None):
    import lossearch

    result = lossearch.optimize(
        build_model,
        data,
        space=args.space,
        objective=args.objective,
        n_trials=args.trials,
        timeout=args.timeout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        cv=args.cv or None,
        validation=args.validation,
        storage=storage or args.storage,
        study_name=args.study,
        selection=args.selection,
        confirm_seeds=args.confirm_seeds,
        decision=not args.no_decision,
        registered_model_name=args.register_model,
        tracking_uri=args.tracking_uri,
        experiment_name=args.experiment,
        seed=args.seed,
        refit=refit or args.register_model is not None,
        show_progress=not args.no_progress,
        class_names=class_names,
        recycle_every=args.recycle_every or None,
    )
    print()
    print(result.summary())
    result.export(args.output)
    print(f"\nbest loss written to {args.output}  (rebuild: lossearch.load_loss({args.output!r}))")
    if args.report:
        print(f"report written to {result.report(args.report)}")
    _print_mlflow_hint(result, args.experiment)
    return result


def _print_mlflow_hint(result, experiment: str):
    import mlflow

    from lossearch.tracking import mask_credentials

    uri = mlflow.get_tracking_uri()
    if result.model_uri:
        print(
            f"model logged as {result.model_uri}  (load: import lossearch, then "
            f"mlflow.keras.load_model({result.model_uri!r}))"
        )
    run = mlflow.MlflowClient(uri).get_run(result.mlflow_run_id)
    page = f"#/experiments/{run.info.experiment_id}/runs"
    if uri.startswith("http"):
        print(
            f"MLflow: open {mask_credentials(uri).rstrip('/')}/{page} (experiment {experiment!r})."
        )
        return
    print(
        f"MLflow: parent run {result.mlflow_run_id} in experiment {experiment!r}; to compare the "
        f"trials (nested under it) run\n  {_mlflow_command()} ui --backend-store-uri "
        f"{_absolute_store(uri)} --port 5000\nand open http://127.0.0.1:5000/{page}"
    )


def _absolute_store(uri: str) -> str:
    """A file or SQLite store URI that names the same store from any folder."""
    for prefix in ("sqlite:///", "file://"):
        if uri.startswith(prefix) and not uri.startswith(f"{prefix}/"):
            return prefix + os.path.abspath(uri[len(prefix) :])
    return uri if "://" in uri else os.path.abspath(uri)


def _mlflow_command() -> str:
    """``mlflow`` when the one on PATH is this environment's, else ``python -m mlflow``."""
    found = shutil.which("mlflow")
    if found and os.path.dirname(os.path.realpath(found)) == os.path.dirname(sys.executable):
        return "mlflow"
    return f"{sys.executable} -m mlflow"


def cmd_demo(args):
    import keras

    from lossearch.datasets import long_tailed_digits

    x, y = long_tailed_digits(imbalance=args.imbalance, seed=args.seed)

    def build_model():
        return keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10),
            ]
        )

    counts = ", ".join(str(int((y == c).sum())) for c in range(10))
    print(
        f"lossearch demo: long-tailed digits (imbalance {args.imbalance:g}; class counts {counts}),"
        f" space {args.space!r}, {args.trials} trials of {args.epochs} epochs"
    )
    _run_search(
        build_model, (x, y), args, refit=False, class_names=[f"digit{c}" for c in range(10)]
    )


def cmd_optimize(args):
    build_model = _load_attr(args.build_model, "build_model")
    load_data = _load_attr(args.data, "--data")
    data = load_data() if callable(load_data) else load_data
    _run_search(build_model, data, args, refit=False)


def cmd_worker(args):
    if args.threads is not None:
        from lossearch.resources import limit_threads

        limit_threads(args.threads)  # before the user's module builds anything
    build_model = _load_attr(args.build_model, "build_model")
    load_data = _load_attr(args.data, "--data")
    data = load_data() if callable(load_data) else load_data
    _run_search(build_model, data, args, refit=False, storage=_storage(args))


def cmd_sync_mlflow(args):
    from lossearch.mlflow_sync import sync_mlflow

    report = sync_mlflow(
        args.storage, args.study, tracking_uri=args.tracking_uri, experiment_name=args.experiment
    )
    print(report)


def cmd_export(args):
    from lossearch.records import load_best_config

    config = load_best_config(args.storage, args.study)
    config.to_json(args.output)
    print(f"{config.describe()}\nwritten to {args.output}")


def cmd_report(args):
    from lossearch.report import ReportContent, write_report

    content = ReportContent.from_study(args.storage, args.study)
    print(
        f"{content.best_config.describe()}\nreport written to {write_report(content, args.output)}"
    )


def cmd_spaces(args):
    from lossearch.search_space import SearchSpace, bundled_description, bundled_spaces

    for name in bundled_spaces():
        print(f"{name:<11} {bundled_description(name)}")
        if name == "default":
            continue
        space = SearchSpace.load(name)
        print(f"{'':<11} tasks: {', '.join(space.tasks)}")
        print(f"{'':<11} families: {', '.join(space.families)}")
        print(
            f"{'':<11} weights: {', '.join(space.weights)}; recipes: "
            f"{', '.join(r.name for r in space.recipes)}"
        )


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as the one line every other failure is."""

    def error(self, message: str):
        command = self.prog.removeprefix("lossearch").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"lossearch: error: {where}{message} (see '{self.prog} --help')\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossearch",
        description="Find the best loss function for a Keras classifier on imbalanced data. "
        "'lossearch COMMAND --help' describes each command.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not only its line"
    )
    # Every subcommand's help shows each option's default.
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=functools.partial(
            _Parser, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        ),
    )

    demo = sub.add_parser("demo", help="search on long-tailed digits (bundled, no download)")
    _search_arguments(demo, trials=20, epochs=15, space="quick")
    demo.add_argument(
        "--imbalance",
        type=float,
        default=20.0,
        help="how long the tail is: class c keeps imbalance**(-c/9) of its samples, so digit 0 "
        "keeps all 178 and digit 9 keeps 1/imbalance of them",
    )
    demo.set_defaults(func=cmd_demo)

    opt = sub.add_parser("optimize", help="search a loss for your model and data")
    opt.add_argument("build_model", help="MODULE:build_model")
    opt.add_argument("--data", required=True, help="MODULE:load_data (returns data for optimize)")
    _search_arguments(opt, trials=30, epochs=20, space="default")
    opt.set_defaults(func=cmd_optimize)

    worker = sub.add_parser(
        "worker", help="join a shared study: run trials until it holds --trials finished ones"
    )
    worker.add_argument("build_model", help="MODULE:build_model")
    worker.add_argument("--data", required=True, help="MODULE:load_data (returns data)")
    _search_arguments(worker, trials=30, epochs=20, space="default", worker=True)
    _worker_arguments(worker)
    worker.set_defaults(func=cmd_worker)

    sync = sub.add_parser("sync-mlflow", help="log the trials MLflow missed (no duplicates)")
    sync.add_argument("--storage", required=True, help="Optuna storage URL")
    sync.add_argument("--study", required=True, help="study name")
    sync.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    sync.add_argument("--experiment", default="lossearch", help="for a study without parent run")
    sync.set_defaults(func=cmd_sync_mlflow)

    export = sub.add_parser("export", help="write the best loss of a stored study")
    export.add_argument("--storage", required=True, help="Optuna storage URL")
    export.add_argument("--study", required=True, help="study name")
    export.add_argument("-o", "--output", default="best_loss.json", help="JSON file to write")
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", help="write a stored study's HTML report (no MLflow)")
    report.add_argument("--storage", required=True, help="Optuna storage URL")
    report.add_argument("--study", required=True, help="study name")
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    report.set_defaults(func=cmd_report)

    spaces = sub.add_parser("spaces", help="list the bundled search spaces")
    spaces.set_defaults(func=cmd_spaces)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a command: 0 when it worked, 2 for bad input, 1 when it failed otherwise,
    130 when interrupted. A failure is one ``lossearch: error: ...`` line on stderr
    (``--debug`` adds the traceback)."""
    args = make_parser().parse_args(argv)
    try:
        for option in ("output", "report"):
            _check_output(f"--{option}", getattr(args, option, None))
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"lossearch: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


def _one_line(exc: Exception) -> str:
    from lossearch.tracking import mask_credentials

    text = " ".join(str(exc).split()).removeprefix("lossearch: ") or "(no message)"
    if not isinstance(exc, ValueError | RuntimeError):  # lossearch's own say what they are
        text = f"{type(exc).__name__}: {text}"
    return mask_credentials(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
