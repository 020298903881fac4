"""The ``lossearch`` command: ``demo``, ``optimize``, ``worker``, ``export``, ``report``,
``sync-mlflow``, ``repair``, ``spaces``."""

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

from lossearch._files import output_mode, refuse_inputs  # noqa: E402 - after the log level
from lossearch._secrets import mask_credentials  # noqa: E402
from lossearch.arguments import OPTIMIZE_ARGUMENTS, cli_options  # noqa: E402
from lossearch.tables import is_data_file  # noqa: E402

# A worker trains in child processes replaced this often: flat memory over a long
# search for ~8 s of start-up per replacement (figures in BENCHMARKS.md, "Memory").
WORKER_RECYCLE_EVERY = 25


def _load_attr(spec: str, option: str):
    """``package.module:name`` or ``path/to/file.py:name``."""
    if ":" not in spec:
        raise ValueError(
            f"{option}: expected MODULE:NAME (e.g. mymodels:"
            f"{'load_data' if option == '--data' else 'build_model'}), got {spec!r}."
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
    parser: argparse.ArgumentParser,
    *,
    worker: bool = False,
    output: str = "best_loss.json",
    **defaults,
):
    """The options of every search command: ``optimize``'s arguments that have one, as
    :mod:`lossearch.arguments` declares them, with this command's ``defaults``, and where the
    best loss goes (``output``). A worker must name a shared study."""
    for argument in OPTIMIZE_ARGUMENTS.values():
        if argument.flag is None:
            continue
        options = cli_options(argument)
        if argument.name in defaults:
            options["default"] = defaults[argument.name]
        if worker and argument.name in ("storage", "study_name"):
            options["required"] = True
        parser.add_argument(argument.flag, **options)
    parser.add_argument(
        "-o", "--output", default=output, help=f"where to write the best loss (default: {output})"
    )
    parser.add_argument("--report", default=None, help="also write an HTML report to this path")
    parser.add_argument(
        "-m",
        "--model",
        default=None,
        help="retrain the pick on all the data and save it (its decision rule as last layer) "
        "as this .keras file",
    )


def _positive(text: str) -> int:
    """An argparse type for the worker's own options: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _worker_arguments(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--threads", type=_positive, default=None, help="numeric threads per worker"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_positive,
        default=None,
        help="seconds between heartbeats of a running trial (RDB storages; default 30)",
    )
    parser.add_argument(
        "--grace-period",
        type=_positive,
        default=None,
        help="seconds without heartbeat before a trial is failed and retried (default 4x)",
    )


def _storage(args):
    from lossearch.study.storages import HEARTBEAT_INTERVAL, open_storage

    return open_storage(
        args.storage,
        heartbeat_interval=args.heartbeat_interval or HEARTBEAT_INTERVAL,
        grace_period=args.grace_period,
    )


def _check_output(option: str, path: str | None, inputs: dict) -> None:
    """Before the search, not after it: a path the results cannot be written to, or one
    that is an input of this command (the storage, the space file, a module)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: {path!r} is a folder; name a file in it.")
    if not target.parent.is_dir():
        raise ValueError(f"{option}: the folder {str(target.parent)!r} does not exist.")
    if option == "--model" and target.suffix != ".keras":
        raise ValueError(f"{option}: expected a .keras file name, got {path!r}.")
    refuse_inputs(option, path, inputs)
    try:
        output_mode(target)  # a read-only file: refused now, not once the search is done
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


def _command_inputs(args) -> dict:
    """The files this command reads, which no output of it may replace."""
    from lossearch.settings import resolve_storage
    from lossearch.study.storages import storage_file

    storage = resolve_storage(getattr(args, "storage", None), getattr(args, "study", None))
    inputs = {"the storage": storage_file(storage)}
    space = getattr(args, "space", None)
    if isinstance(space, str) and Path(space).is_file():
        inputs["the space file"] = space
    for option in ("build_model", "data"):
        spec = getattr(args, option, None)
        if spec and option == "data" and is_data_file(spec):
            inputs["the data file"] = spec
        elif spec:
            inputs[f"the {option} module"] = _module_file(spec)
    return inputs


def _module_file(spec: str) -> str | None:
    """The file of ``MODULE:NAME`` or ``path.py:NAME``, without importing it."""
    module = spec.rpartition(":")[0]
    if not module:  # not MODULE:NAME: _load_attr says so
        return None
    if module.endswith(".py") or os.sep in module:
        return module
    beside = Path(*module.split(".")).with_suffix(".py")  # a module in this folder
    if beside.is_file():
        return str(beside)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return getattr(found, "origin", None)


def _run_search(build_model, data, args, class_names=None, storage=None):
    import warnings

    import lossearch

    warnings.filterwarnings(
        "ignore", category=UserWarning, module="lossearch"
    )  # summary shows them
    arguments = {name: getattr(args, name) for name, a in OPTIMIZE_ARGUMENTS.items() if a.flag}
    if storage is not None:
        arguments["storage"] = storage  # opened with the worker's heartbeat settings
    result = lossearch.optimize(
        build_model,
        data,
        **arguments,
        refit=args.model is not None or args.registered_model_name is not None,
        class_names=class_names,
    )
    print()
    print(result.summary())
    _write_outputs(result, args)
    _print_mlflow_hint(result, args.experiment_name)
    return result


def _write_outputs(result, args) -> None:
    """The loss JSON, the report and the model, after the search. A write that fails (a full
    disk) prints the best loss instead, so that a finished search is never lost."""
    try:
        result.export(args.output)
    except OSError as exc:
        print(result.best_config.to_json())
        raise RuntimeError(
            f"--output: could not write {args.output!r} ({exc}); the best loss is printed above"
        ) from None
    print(f"\nbest loss written to {args.output}  (rebuild: lossearch.load_loss({args.output!r}))")
    if args.report:
        print(f"report written to {result.report(args.report)}")
    if args.model and result.model is not None:
        saved = _save_model(result.model, args.model)
        print(f"model written to {saved}  (load: lossearch.load_model({args.model!r}))")


def _save_model(model, path: str) -> str:
    """``model`` to ``path`` (``.keras``), whole or not at all: saved beside it under a
    temporary name, then renamed into place."""
    target = Path(path)
    mode = output_mode(target, path)  # before saving: a read-only file is refused
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(temporary)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _print_mlflow_hint(result, experiment: str):
    import mlflow

    uri = mlflow.get_tracking_uri()
    if result.model_uri:
        print(
            f"model logged as {result.model_uri}  (load: import lossearch, then "
            f"mlflow.keras.load_model({result.model_uri!r}))"
        )
    page = f"#/experiments/{result.mlflow_experiment_id}/runs"
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


def _data(spec: str, target: str | None = None):
    """``--data``: a data file (CSV or Parquet with ``--target``, ``.npz``), or
    ``MODULE:NAME``: the data itself, or what a function of no arguments returns."""
    from lossearch._validation import takes_positional
    from lossearch.tables import read_data_file, refuse_other_files

    if is_data_file(spec):
        return read_data_file(spec, target)
    refuse_other_files(spec)
    if target is not None:
        raise ValueError("--target: names a column of a data file (--data file.csv).")
    found = _load_attr(spec, "--data")
    if not callable(found):
        return found
    if not takes_positional(found, 0):
        raise ValueError(
            f"--data: {spec} is a function that needs arguments; name the data, or a function "
            "that takes none and returns it (e.g. def load_data(): return x, y)."
        )
    return found()


def _check_space(space: str | None) -> None:
    """``--space``: a bundled space's name, or a space file that reads as a valid space
    (the space's own checks need no Keras, so a bad file answers at once)."""
    from lossearch.space_files import bundled_path, bundled_spaces

    if space is None or bundled_path(space) is not None:
        return
    if Path(space).is_file():
        from lossearch.search_space import SearchSpace

        SearchSpace.from_file(space)  # raises naming the file, the key and the reason
        return
    raise ValueError(
        f"--space: no bundled space or file {space!r}; bundled spaces: "
        f"{', '.join(bundled_spaces())}, or a YAML file's path."
    )


def _check_objective(name: str | None) -> None:
    """``--objective``: one of the registry's names (the registry loads without Keras)."""
    if name is None:
        return
    from lossearch.metrics.objectives import OBJECTIVES

    if name not in OBJECTIVES:
        raise ValueError(
            f"--objective: unknown objective {name!r}; expected one of: {', '.join(OBJECTIVES)}."
        )


def _file_data(args):
    """``--data`` read, when it names a file rather than ``MODULE:NAME`` (whose module may
    load TensorFlow itself); None otherwise."""
    spec = getattr(args, "data", None)
    if spec is None or not (is_data_file(spec) or ":" not in spec):
        return None
    return _data(spec, getattr(args, "target", None))


DEMO_OUTPUT = os.path.join("lossearch-demo", "best_loss.json")


def cmd_demo(args):
    from lossearch.datasets import long_tailed_digits
    from lossearch.models import MLP

    x, y = long_tailed_digits(imbalance=args.imbalance, seed=args.seed)
    counts = ", ".join(str(int((y == c).sum())) for c in range(10))
    print(
        f"lossearch demo: long-tailed digits (imbalance {args.imbalance:g}; class counts {counts}),"
        f" space {args.space!r}, {args.n_trials} trials of {args.epochs} epochs"
    )
    _run_search(MLP(64, 10), (x, y), args, class_names=[f"digit{c}" for c in range(10)])


def cmd_optimize(args):
    build = None if args.build_model is None else _load_attr(args.build_model, "build_model")
    data = args.file_data if args.file_data is not None else _data(args.data, args.target)
    if build is not None:
        _run_search(build, data, args)
        return
    data, class_names = _coded_labels(data)
    _run_search(_mlp_for(data), data, args, class_names=class_names)


def _coded_labels(data):
    """Where this command builds the model, numeric labels that are codes (1/2/3, -1/+1)
    rather than class indices name the classes, in numeric order: ``(data, class_names)``,
    the labels as those names (None where they are indices 0..k-1 already, or not numbers)."""
    import numpy as np

    if not (isinstance(data, tuple) and len(data) == 2):
        return data, None
    x, y = data
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iuf" or not np.isfinite(y).all():
        return data, None
    codes = np.unique(y)
    if np.array_equal(codes, np.arange(len(codes))):
        return data, None
    names = [f"{v:g}" for v in codes]
    return (x, np.array([f"{v:g}" for v in y])), names


def _mlp_for(data):
    """Without a named ``build_model``: a small MLP sized to the data (from a data file)."""
    from lossearch.models import MLP

    if not (isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape")):
        raise ValueError(
            "build_model: name one (MODULE:build_model) unless --data is a data file, for "
            "which a small MLP is built."
        )
    return MLP.for_data(*data)


def cmd_worker(args):
    if args.threads is not None:
        from lossearch.resources import limit_threads

        limit_threads(args.threads)  # before the user's module builds anything
    build = _load_attr(args.build_model, "build_model")  # before the user's data loads
    data = args.file_data if args.file_data is not None else _data(args.data, args.target)
    _run_search(build, data, args, storage=_storage(args))


def cmd_sync_mlflow(args):
    from lossearch.tracking.sync import sync_mlflow

    report = sync_mlflow(
        args.storage, args.study, tracking_uri=args.tracking_uri, experiment_name=args.experiment
    )
    print(report)


def cmd_export(args):
    from lossearch.study.stored import load_best_config

    config = load_best_config(args.storage, args.study)
    config.to_json(args.output)
    print(f"{config.describe()}\nwritten to {args.output}")


def cmd_report(args):
    from lossearch.report import write_report
    from lossearch.study.stored import StoredStudy

    summary = StoredStudy.load(args.storage, args.study).summary()
    print(
        f"{summary.best_config.describe()}\nreport written to {write_report(summary, args.output)}"
    )


def cmd_repair(args):
    from lossearch.study.storages import repair_journal

    repair = repair_journal(args.storage)
    shown = mask_credentials(args.storage)
    if repair.dropped:
        print(
            f"dropped {repair.dropped} bytes of an incomplete record from the end of {shown} "
            f"(kept in {repair.kept_in}); every complete record, so every finished trial, is "
            "as it was."
        )
    else:
        print(f"nothing to repair: {shown} ends with a complete record.")


def cmd_spaces(args):
    """The bundled spaces as their files say (no Keras needed; tests load each in full)."""
    from lossearch.space_files import bundled_path, bundled_spaces, read_space_file

    for name in bundled_spaces():
        data = read_space_file(bundled_path(name)) or {}
        print(f"{name:<11} {data.get('description', '')}")
        if name == "default":
            continue
        recipes = ", ".join(str(r.get("name", r.get("family"))) for r in data.get("recipes", []))
        print(f"{'':<11} tasks: {', '.join(data.get('tasks', []))}")
        print(f"{'':<11} families: {', '.join(data.get('families', {}))}")
        print(f"{'':<11} weights: {', '.join(data.get('weights', {}))}; recipes: {recipes}")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, but for required options, flags and ``None``
    defaults (whose help says what happens without them)."""

    def _get_help_string(self, action):
        # a flag's default is its not being given: "--no-progress ... (default: True)" read
        # as if the bar were off by default
        if action.required or action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as the one line every other failure is."""

    def error(self, message: str):
        command = self.prog.removeprefix("lossearch").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"lossearch: error: {where}{message} (see '{self.prog} --help')\n")


def _imbalance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value >= 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def _search_commands(sub) -> None:
    demo = sub.add_parser("demo", help="search on long-tailed digits (bundled, no download)")
    # the demo's own folder: a best_loss.json of the user's own is never replaced by it
    _search_arguments(demo, output=DEMO_OUTPUT, n_trials=10, epochs=8, space="quick", seed=0)
    demo.add_argument(
        "--imbalance",
        type=_imbalance,
        default=20.0,
        help="how long the tail is: class c keeps imbalance**(-c/9) of its samples, so digit 0 "
        "keeps all 178 and digit 9 keeps 1/imbalance of them",
    )
    demo.set_defaults(func=cmd_demo)

    opt = sub.add_parser("optimize", help="search a loss for your model and data")
    _data_arguments(
        opt,
        builder_help="MODULE:build_model; without it, a small MLP sized to a data file",
        builder_optional=True,
    )
    _search_arguments(opt, seed=0)
    opt.set_defaults(func=cmd_optimize)

    worker = sub.add_parser(
        "worker", help="join a shared study: run trials until it holds --trials finished ones"
    )
    _data_arguments(worker, builder_help="MODULE:build_model", builder_optional=False)
    _search_arguments(worker, worker=True, recycle_every=WORKER_RECYCLE_EVERY)
    _worker_arguments(worker)
    worker.set_defaults(func=cmd_worker)


def _data_arguments(parser, builder_help: str, builder_optional: bool) -> None:
    optional = {"nargs": "?", "default": None} if builder_optional else {}
    parser.add_argument("build_model", help=builder_help, **optional)
    parser.add_argument(
        "--data",
        required=True,
        help="a data file (.csv or .parquet with --target, .npz with arrays x and y) or "
        "MODULE:load_data (returns data for optimize)",
    )
    parser.add_argument("--target", default=None, help="the label column of a CSV or Parquet file")


# what reads a stored search takes either backend's
STORED_SEARCH = (
    "an Optuna storage URL, or keras_tuner:///FOLDER for a Keras Tuner search "
    "(its projects' folder, .lossearch/tuner by default)"
)


def _study_commands(sub) -> None:
    sync = sub.add_parser("sync-mlflow", help="log the trials MLflow missed (no duplicates)")
    sync.add_argument("--storage", required=True, help=STORED_SEARCH)
    sync.add_argument("--study", required=True, help="study name (Keras Tuner: project name)")
    sync.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    sync.add_argument("--experiment", default="lossearch", help="for a study without parent run")
    sync.set_defaults(func=cmd_sync_mlflow)
    for name, helps, default in (
        ("export", "write the best loss of a stored study", "best_loss.json"),
        ("report", "write a stored study's HTML report (no MLflow)", "report.html"),
    ):
        command = sub.add_parser(name, help=helps)
        command.add_argument("--storage", required=True, help=STORED_SEARCH)
        command.add_argument(
            "--study", required=True, help="study name (Keras Tuner: project name)"
        )
        command.add_argument("-o", "--output", default=default, help="the file to write")
        command.set_defaults(func=cmd_export if name == "export" else cmd_report)
    repair = sub.add_parser(
        "repair", help="drop the incomplete last record a killed worker left in a journal file"
    )
    repair.add_argument("--storage", required=True, help="journal:///path.log")
    repair.set_defaults(func=cmd_repair)
    spaces = sub.add_parser("spaces", help="list the bundled search spaces")
    spaces.set_defaults(func=cmd_spaces)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossearch",
        description="Find the best loss function for a Keras classifier on imbalanced data. "
        "'lossearch COMMAND --help' describes each command.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not only its line"
    )
    from lossearch import __version__

    parser.add_argument("--version", action="version", version=f"lossearch {__version__}")
    # Every subcommand's help shows each option's default.
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=functools.partial(_Parser, formatter_class=_Help),
    )

    _search_commands(sub)
    _study_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a command: 0 when it worked, 2 for bad input, 1 when it failed otherwise,
    130 when interrupted. A failure is one ``lossearch: error: ...`` line on stderr
    (``--debug`` adds the traceback)."""
    args = make_parser().parse_args(argv)
    try:
        if getattr(args, "output", None) == DEMO_OUTPUT:  # the demo's own folder
            Path(DEMO_OUTPUT).parent.mkdir(exist_ok=True)
        outputs = [o for o in ("output", "report", "model") if getattr(args, o, None)]
        inputs = _command_inputs(args) if outputs else {}
        for option in outputs:
            _check_output(f"--{option}", getattr(args, option), inputs)
        # a data file and the space are checked before TensorFlow loads: their errors answer
        # at once, in the command line's terms
        _check_space(getattr(args, "space", None))
        _check_objective(getattr(args, "objective", None))
        args.file_data = _file_data(args)
        if args.func not in _WITHOUT_TENSORFLOW:
            _load_search_stack()
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"lossearch: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


# commands that read what a search stored, or the bundled files: they answer in a second
_WITHOUT_TENSORFLOW = (cmd_spaces, cmd_export, cmd_report, cmd_repair)


def _load_search_stack() -> None:
    """What ``import lossearch`` loads outside the command line (TensorFlow without its
    start-up lines, lossearch's classes registered with Keras), once the arguments are
    known to be good."""
    from lossearch._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    importlib.import_module("lossearch.saving")  # registers the losses, layers and metrics


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()).removeprefix("lossearch: ") or "(no message)"
    if not isinstance(exc, ValueError | RuntimeError):  # lossearch's own say what they are
        text = f"{type(exc).__name__}: {text}"
    return mask_credentials(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
