"""Efficacy of lossearch's pick on data the search never saw, across datasets and seeds.

Every method gets the same pool (train + validation) and is scored on the same held-out test
set (see ``efficacy_data``). Methods:

* ``recipe:<name>``: each recipe of the task's bundled space as a fixed loss, trained on the
  pool for the same epochs (what a user picks by hand from a paper);
* ``ce+class_weight`` (binary): CE with ``fit(class_weight=...)`` balanced;
* ``lossearch``: ``optimize`` with its defaults and ``refit``; its test score is taken from
  ``result.model`` (decision rule applied) and, for the "with and without" figure, from the
  same refit model without the decision layer;
* ``lossearch_holdout``: the same with ``cv=None`` (one 20% hold-out split, whatever the tail);
* ``lossearch_cv``: the same with ``cv=3`` (2 where the rarest class has 2 samples);
* ``plain_optuna``: TPE over the same space with the same ``n_trials`` and ``epochs``, one
  stratified hold-out split, the top validation trial refit on the pool.

Results are cached per (problem, seed, method) in ``benchmarks/results/efficacy_runs.jsonl``;
``--redo METHOD`` measures a method again. ``--jobs N`` runs N processes of one thread each.

Run: make benchmark-efficacy   (or .venv/bin/python benchmarks/efficacy.py [--quick])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import efficacy_data  # noqa: E402  (benchmarks/efficacy_data.py)
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "efficacy_runs.jsonl"
SPACE = {"multiclass": "long_tail", "binary": "binary"}
SEARCH_METHODS = ("lossearch", "lossearch_holdout", "lossearch_cv", "plain_optuna")


def build_model_for(n_features: int, n_outputs: int):
    import keras

    def build_model():
        return keras.Sequential(
            [
                keras.Input((n_features,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(n_outputs),
            ]
        )

    return build_model


def methods_for(task: str) -> list[str]:
    from lossearch.search_space import SearchSpace

    recipes = [f"recipe:{r.name}" for r in SearchSpace.load(SPACE[task], task=task).recipes]
    extra = ["ce+class_weight"] if task == "binary" else []
    return recipes + extra + list(SEARCH_METHODS)


# -- training and scoring -------------------------------------------------------------------


def _train(setting, config, budget, seed, x=None, y=None, class_weight=None):
    import keras

    from lossearch import callbacks_for

    x = setting.x if x is None else x
    y = setting.y if y is None else y
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    n_out = 1 if setting.task == "binary" else len(setting.counts)
    model = build_model_for(x.shape[1], n_out)()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=config.build())
    model.fit(
        x,
        y.reshape(-1, 1) if setting.task == "binary" else y,
        epochs=budget["epochs"],
        batch_size=budget["batch_size"],
        verbose=0,
        class_weight=class_weight,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks_for(config)],
    )
    return model


def _probabilities(outputs, task, from_logits=True):
    outputs = np.asarray(outputs, dtype=np.float64)
    if not from_logits:
        return outputs
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-outputs.reshape(-1)))
    e = np.exp(outputs - outputs.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_scores(setting, outputs, from_logits=True) -> dict:
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, recall_score

    prob = _probabilities(outputs, setting.task, from_logits)
    if setting.task == "multiclass":
        return {
            "balanced_accuracy": float(balanced_accuracy_score(setting.y_test, prob.argmax(-1)))
        }
    pred = (prob.reshape(-1) >= 0.5).astype(int)
    recalls = recall_score(setting.y_test, pred, labels=[0, 1], average=None, zero_division=0)
    return {
        "pr_auc": float(average_precision_score(setting.y_test, prob.reshape(-1))),
        "g_mean": float(np.sqrt(recalls[0] * recalls[1])),
    }


def _config(setting, fields):
    from lossearch import LossConfig

    return LossConfig(**fields, class_counts=setting.counts, task=setting.task)


# -- the methods ----------------------------------------------------------------------------


def run_recipe(setting, name, budget, seed):
    from lossearch.search_space import RecipeSource, SearchSpace

    space = SearchSpace.load(SPACE[setting.task], task=setting.task)
    recipe = next(r for r in space.recipes if r.name == name)
    config = space.sample(RecipeSource(recipe), class_counts=setting.counts, task=setting.task)
    model = _train(setting, config, budget, seed)
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": config.describe()}


def run_class_weight(setting, budget, seed):
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.arange(2), y=setting.y)
    config = _config(setting, {"family": "ce"})
    model = _train(setting, config, budget, seed, class_weight=dict(enumerate(weights)))
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": "ce + class_weight"}


def run_lossearch(setting, budget, seed, cv="auto", pruner=None):
    import lossearch
    from lossearch.layers import without_decision

    with tempfile.TemporaryDirectory() as tmp:
        result = lossearch.optimize(
            build_model_for(
                setting.x.shape[1], 1 if setting.task == "binary" else len(setting.counts)
            ),
            (setting.x, setting.y.reshape(-1, 1) if setting.task == "binary" else setting.y),
            n_trials=budget["n_trials"],
            epochs=budget["epochs"],
            batch_size=budget["batch_size"],
            cv=cv,
            seed=seed,
            pruner=pruner,
            show_progress=False,
            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            experiment_name="efficacy",
        )
    raw = without_decision(result.model)
    return {
        "scores": test_scores(setting, result.model(setting.x_test), from_logits=False),
        "scores_without_decision": test_scores(setting, raw(setting.x_test)),
        "pick": result.best_config.describe(),
        "decision": result.best_config.decision.describe() if result.best_config.decision else "",
        "reason": result.selection.reason,
        "phases": {**result.seconds, "search_recipes": _recipe_seconds(result.study)},
        "trial_cost": trial_cost(result.study),
        "confirmation": [
            {k: row[k] for k in ("trial", "recipe", "role", "runs", "stopped", "confirmed_mean")}
            for row in result.selection.table
        ],
    }


def _recipe_seconds(study) -> float:
    """Wall seconds of the search's recipe trials (never pruned: the part pruning cannot cut)."""
    return sum(
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.trials
        if t.user_attrs.get("recipe") and t.datetime_complete is not None
    )


def trial_cost(study) -> dict | None:
    """A trained trial's wall seconds as ``fixed + per_epoch * epochs``, least squares over
    the search's trained trials (duplicates train nothing), and what its sampled ones cost."""
    trained = [
        t
        for t in study.trials
        if t.datetime_complete is not None
        and t.intermediate_values
        and "duplicate_of" not in t.user_attrs
    ]
    epochs = np.array([len(t.intermediate_values) for t in trained], dtype=float)
    seconds = np.array([(t.datetime_complete - t.datetime_start).total_seconds() for t in trained])
    if len(set(epochs)) < 2:
        return None  # nothing pruned: no line to fit
    per_epoch, fixed = np.polyfit(epochs, seconds, 1)
    sampled = [i for i, t in enumerate(trained) if not t.user_attrs.get("recipe")]
    return {
        "fixed": float(fixed),
        "per_epoch": float(per_epoch),
        "sampled_trials": len(sampled),
        "sampled_seconds": float(seconds[sampled].sum()),
        "sampled_epochs": float(epochs[sampled].mean()) if sampled else 0.0,
    }


def run_plain_optuna(setting, budget, seed):
    """What a user writes without lossearch: TPE over the same space, the top trial refit."""
    import optuna

    from lossearch import LossConfig
    from lossearch.backends.optuna import OptunaSource
    from lossearch.metrics import resolve_objective, scalar_metric
    from lossearch.search_space import SearchSpace

    space = SearchSpace.load(SPACE[setting.task], task=setting.task)
    objective_name = resolve_objective(None, setting.task).name
    x_tr, x_va, y_tr, y_va = _holdout(setting, seed)
    counts = np.bincount(y_tr, minlength=len(setting.counts)).tolist()
    names = [str(i) for i in range(len(counts))]

    def objective(trial):
        config = space.sample(OptunaSource(trial), class_counts=counts, task=setting.task)
        model = _train(setting, config, budget, seed + trial.number, x_tr, y_tr)
        prob = _probabilities(model(x_va), setting.task)
        trial.set_user_attr("config", config.to_dict())
        return scalar_metric(
            objective_name,
            y_va.reshape(-1, 1) if setting.task == "binary" else y_va,
            prob.reshape(-1, 1) if setting.task == "binary" else prob,
            task=setting.task,
            class_names=names,
            minority_classes=[int(np.argmin(counts))],
        )

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=budget["n_trials"], catch=(Exception,))
    best = LossConfig.from_dict(study.best_trial.user_attrs["config"])
    config = _config(setting, {k: v for k, v in best.to_dict().items() if k in _SEARCHED})
    model = _train(setting, config, budget, seed)
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": config.describe()}


def _holdout(setting, seed):
    """The plain loops' one stratified 80/20 split of the labelled data."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        setting.x, setting.y, test_size=0.2, stratify=setting.y, random_state=seed
    )


def run_keras_tuner_hyperband(setting, budget, seed):
    """What a Keras Tuner user writes: stock Hyperband (``max_epochs`` = the epoch budget,
    factor 3; it decides its own number of trials) over the same space through
    ``LossHyperModel``, on one hold-out split, its best trial refit like the plain loop's."""
    import keras
    import keras_tuner as kt

    from lossearch.keras_tuner import LossHyperModel, best_config

    binary = setting.task == "binary"
    x_tr, x_va, y_tr, y_va = _holdout(setting, seed)
    counts = np.bincount(y_tr, minlength=len(setting.counts)).tolist()
    n_out = 1 if binary else len(counts)

    def build_model():
        model = build_model_for(x_tr.shape[1], n_out)()
        if binary:  # the objective as a streaming metric of fit's validation step
            pr_auc = keras.metrics.AUC(curve="PR", from_logits=True, name="pr_auc")
            model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=[pr_auc])
        return model

    hypermodel = LossHyperModel(build_model, space=SPACE[setting.task], class_counts=counts)
    objective = "val_pr_auc" if binary else "val_balanced_accuracy"
    shape = (-1, 1) if binary else (-1,)
    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.Hyperband(
            hypermodel,
            objective=kt.Objective(objective, "max"),
            max_epochs=budget["epochs"],
            factor=3,
            seed=seed,
            directory=tmp,
            project_name="hyperband",
        )
        tuner.search(
            x_tr,
            y_tr.reshape(shape),
            validation_data=(x_va, y_va.reshape(shape)),
            batch_size=budget["batch_size"],
            verbose=0,
        )
        best, trials = best_config(tuner), len(tuner.oracle.trials)
    config = _config(setting, {k: v for k, v in best.to_dict().items() if k in _SEARCHED})
    model = _train(setting, config, budget, seed)
    return {
        "scores": test_scores(setting, model(setting.x_test)),
        "pick": config.describe(),
        "trials": trials,
    }


_SEARCHED = ("family", "params", "weights", "weight_params", "label_smoothing", "drw_start")


def run_job(job: dict) -> dict:
    """One (problem, seed, method): load, run, score, time. Runs in a worker process."""
    import lossearch

    lossearch.limit_threads(1)
    setting = efficacy_data.load(job["dataset"], job["task"], job["imbalance"], job["seed"])
    method, budget, seed = job["method"], job["budget"], job["seed"]
    start = time.perf_counter()
    if method.startswith("recipe:"):
        out = run_recipe(setting, method.split(":", 1)[1], budget, seed)
    elif method == "ce+class_weight":
        out = run_class_weight(setting, budget, seed)
    elif method == "plain_optuna":
        out = run_plain_optuna(setting, budget, seed)
    elif method == "keras_tuner_hyperband":
        out = run_keras_tuner_hyperband(setting, budget, seed)
    elif method == "lossearch_unpruned":
        import optuna

        out = run_lossearch(setting, budget, seed, pruner=optuna.pruners.NopPruner())
    else:
        cv = {
            "lossearch": "auto",
            "lossearch_holdout": None,
            # 3 folds, or fewer where the rarest class has fewer samples
            "lossearch_cv": min(3, min(setting.counts)),
        }[method]
        out = run_lossearch(setting, budget, seed, cv=cv)
    out.update(
        setting=setting.name,
        task=setting.task,
        seed=seed,
        method=method,
        seconds=time.perf_counter() - start,
        budget=budget,
        counts=setting.counts,
    )
    return out


# -- driver ---------------------------------------------------------------------------------


def load_runs(path: Path = RUNS) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(row) -> tuple:
    return (row["setting"], row["seed"], row["method"])


def plan(args, done: set) -> list[dict]:
    jobs = []
    for dataset, task, imbalance in efficacy_data.settings(args.datasets):
        label = f"{dataset}-LT{imbalance:g}" if task == "multiclass" else dataset
        for seed in args.seeds:
            for method in methods_for(task):
                if args.methods and method not in args.methods:
                    continue
                if (label, seed, method) in done:
                    continue
                jobs.append(
                    {
                        "dataset": dataset,
                        "task": task,
                        "imbalance": imbalance,
                        "seed": seed,
                        "method": method,
                        "budget": args.budget,
                    }
                )
    # the longest jobs first, so the pool's last minutes are not one search alone
    return sorted(jobs, key=lambda j: j["method"] not in SEARCH_METHODS)


def measure(args, runs_path: Path = RUNS) -> list[dict]:
    rows = [
        r
        for r in load_runs(runs_path)
        if r["method"] not in args.redo and r["budget"] == args.budget
    ]
    runs_path.parent.mkdir(parents=True, exist_ok=True)
    runs_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    jobs = plan(args, {_key(r) for r in rows})
    print(f"efficacy: {len(jobs)} jobs to run on {args.jobs} process(es)", flush=True)
    context = get_context("spawn")  # a fresh TensorFlow per worker
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        for row in pool.map(run_job, jobs):
            rows.append(row)
            with runs_path.open("a") as out:
                out.write(json.dumps(row) + "\n")
            shown = ", ".join(f"{k} {v:.3f}" for k, v in row["scores"].items())
            print(f"{row['setting']} s{row['seed']} {row['method']}: {shown}", flush=True)
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10-minute smoke run")
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md")
    parser.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 16)))
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--datasets", nargs="+", help="dataset or problem names to run")
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument("--redo", nargs="+", default=[], help="measure these methods again")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget = {"n_trials": 8, "epochs": 8, "batch_size": 32}
        args.seeds = args.seeds or [0]
        args.datasets = args.datasets or ["digits-LT100", "segment-LT50", "ecoli3"]
    else:
        args.budget = {"n_trials": 12, "epochs": 15, "batch_size": 32}
        args.seeds = args.seeds or [0, 1, 2]
    return args


def main(argv=None) -> int:
    from efficacy_report import render_and_write

    args = parse_args(argv)
    runs = RESULTS / ("efficacy_quick.jsonl" if args.quick else "efficacy_runs.jsonl")
    rows = load_runs(runs) if args.render else measure(args, runs)
    rows = [r for r in rows if r["budget"] == args.budget]
    render_and_write(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
