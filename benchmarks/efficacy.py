"""Efficacy of lossearch's pick on data the search never saw, and where choosing the loss pays.

Every method gets the same pool (train + validation) and is scored on the same held-out test
set (problems, and which are development or confirmation problems: ``efficacy_data``).
Methods, per problem, seed and objective:

* ``recipe:<name>``: each recipe of the task's bundled space as a fixed loss, trained on the
  pool, arg-max / 0.5 (what a user picks by hand from a paper); objective-free;
* ``ce+class_weight`` (binary): CE with ``fit(class_weight=...)`` balanced;
* ``lossearch``: ``optimize`` with its defaults and ``refit``, scored through
  ``result.model`` (its decision rule applied) and, as ``lossearch (no decision)``, through
  the same model without it. Its **regret analysis**: the search's top trials by validation
  (``REGRET_TOP``), every recipe trial and the pick, each retrained on the whole pool with
  the benchmark's seed and scored on test under its own tuned decision rule. Its
  **ensemble** check (#26 item 3): the confirmed candidates' retrained models averaged
  against a seed ensemble of the incumbent of the same size (``ensemble_check``);
* ``recipes_only``: ``optimize`` with the recipes alone (``n_trials`` = the recipes):
  recipes + confirmation + decision rule, no search. lossearch minus this is what the
  search itself adds (the default objective, first seed);
* ``optuna_by_hand``: what a user writes by hand: TPE over the same space with the same
  trials and epochs, one stratified 80/20 hold-out, no recipes, no decision rule, no
  pruning, the top validation trial refit on the pool (the default objective, first seed);
* ``optuna_like_for_like``: the same loop as lossearch runs it (its scoring, recipes
  enqueued, decision rule, pruner), the top trial by validation: ``optimize(selection=
  "best")``. lossearch minus this is its robust selection; this minus ``optuna_by_hand`` is
  the rest (the default objective, first seed).

Results are cached per (problem, seed, method, objective) in
``benchmarks/results/efficacy_runs.jsonl`` with the commit that measured them; ``--redo
METHOD`` measures a method again. ``--jobs N`` runs N processes of one thread each.

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
from sections import git  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "efficacy_runs.jsonl"
SPACE = {"multiclass": "long_tail", "binary": "binary", "multilabel": "multilabel"}
SEARCH_METHODS = ("lossearch", "recipes_only", "optuna_by_hand", "optuna_like_for_like")
# what each search keeps of its confirmation table (values: each run's score, the search run
# first when it counts, so that a later replay can leave out the run that selected a trial)
CONFIRMATION_KEYS = (
    "trial", "recipe", "role", "runs", "stopped", "set_aside", "confirmed_mean", "values",
)  # fmt: skip
# the comparison methods run on the default objective; the other objectives are read off the
# regret analysis (searched configs against every recipe, on test)
DEFAULT_OBJECTIVE_ONLY = ("recipes_only", "optuna_by_hand", "optuna_like_for_like")
# the comparison searches run on each problem's first seed only (the run's size on 2 cores)
FIRST_SEED_ONLY = ("recipes_only", "optuna_by_hand", "optuna_like_for_like")
REGRET_TOP = 10  # the top trials by validation retrained for the regret analysis
MODELS = efficacy_data.MODELS


def build_model_for(n_features, n_outputs: int, model: str = "mlp"):
    """The benchmark's models, logits out: an MLP (64 hidden units) on vectors; on
    ``(height, width, channels)`` images a small CNN (``"cnn"``) or a deeper one
    (``"deep_cnn"``: three convolution blocks with batch normalisation)."""
    import keras

    layers = keras.layers

    def build_model():
        if model == "deep_cnn":
            blocks = []
            for width in (16, 32, 64):
                blocks += [
                    layers.Conv2D(width, 3, padding="same", use_bias=False),
                    layers.BatchNormalization(momentum=0.9),  # few steps an epoch
                    layers.ReLU(),
                    layers.MaxPooling2D(2),
                ]
            body = [*blocks, layers.GlobalAveragePooling2D()]
        elif isinstance(n_features, tuple):  # an image: the small CNN
            body = [
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.Conv2D(32, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(64, activation="relu"),
            ]
        else:
            body = [layers.Dense(64, activation="relu")]
        shape = n_features if isinstance(n_features, tuple) else (n_features,)
        return keras.Sequential([keras.Input(shape), *body, layers.Dense(n_outputs)])

    return build_model


def model_for(setting):
    features = setting.x.shape[1:] if setting.x.ndim > 2 else setting.x.shape[1]
    return build_model_for(features, setting.n_outputs, setting.model)


def methods_for(task: str) -> list[str]:
    from lossearch.search_space import SearchSpace

    recipes = [f"recipe:{r.name}" for r in SearchSpace.load(SPACE[task], task=task).recipes]
    extra = ["ce+class_weight"] if task == "binary" else []
    return recipes + extra + list(SEARCH_METHODS)


def _labels(setting, y=None):
    """Labels as ``fit`` and ``optimize`` take them (binary: a column)."""
    y = setting.y if y is None else y
    return y.reshape(-1, 1) if setting.task == "binary" else y


# -- training and scoring -------------------------------------------------------------------


def _train(setting, config, budget, seed, x=None, y=None, class_weight=None):
    import keras

    from lossearch import callbacks_for

    x = setting.x if x is None else x
    y = setting.y if y is None else y
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = model_for(setting)()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=config.build())
    model.fit(
        x,
        _labels(setting, y),
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
    if task == "multiclass":
        e = np.exp(outputs - outputs.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-outputs))


def test_scores(setting, outputs, from_logits=True) -> dict:
    """Every registered objective on the test set, computed as lossearch computes it
    (minority classes: those below the pool's median count; binary: the positives)."""
    from lossearch.metrics import OBJECTIVES, default_minority_classes, evaluate

    prob = _probabilities(outputs, setting.task, from_logits)
    if setting.task == "binary":
        prob = prob.reshape(-1, 1)
    names = [str(i) for i in range(len(setting.counts))]
    minority = default_minority_classes(setting.counts, setting.task)
    summary = evaluate(
        _labels(setting, setting.y_test),
        prob,
        task=setting.task,
        class_names=names,
        minority_classes=minority,
    ).summary
    return {k: float(v) for k, v in summary.items() if k in OBJECTIVES}


def _config(setting, fields):
    from lossearch import LossConfig

    kept = {k: v for k, v in fields.items() if k in _SEARCHED}
    n_samples = len(setting.y) if setting.task == "multilabel" else None
    return LossConfig(**kept, class_counts=setting.counts, task=setting.task, n_samples=n_samples)


_SEARCHED = ("family", "params", "weights", "weight_params", "label_smoothing", "drw_start")


# -- the methods ----------------------------------------------------------------------------


def run_recipe(setting, name, budget, seed):
    from lossearch.search_space import RecipeSource, SearchSpace

    space = SearchSpace.load(SPACE[setting.task], task=setting.task)
    recipe = next(r for r in space.recipes if r.name == name)
    n_samples = len(setting.y) if setting.task == "multilabel" else None
    config = space.sample(
        RecipeSource(recipe), class_counts=setting.counts, task=setting.task, n_samples=n_samples
    )
    model = _train(setting, config, budget, seed)
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": config.describe()}


def run_class_weight(setting, budget, seed):
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.arange(2), y=setting.y)
    config = _config(setting, {"family": "ce"})
    model = _train(setting, config, budget, seed, class_weight=dict(enumerate(weights)))
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": "ce + class_weight"}


def run_lossearch(setting, budget, seed, objective=None, cv="auto", pruner=None, **options):
    """``optimize`` on the pool; ``options`` go to it (``n_trials`` overrides the budget's)."""
    import lossearch
    from lossearch.layers import without_decision

    with tempfile.TemporaryDirectory() as tmp:
        result = lossearch.optimize(
            model_for(setting),
            (setting.x, _labels(setting)),
            space=SPACE[setting.task],
            objective=objective,
            n_trials=options.pop("n_trials", budget["n_trials"]),
            epochs=budget["epochs"],
            batch_size=budget["batch_size"],
            cv=cv,
            seed=seed,
            pruner=pruner,
            show_progress=False,
            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            experiment_name="efficacy",
            **options,
        )
    raw = without_decision(result.model)
    picked = result.selection
    return {
        "scores": test_scores(setting, result.model(setting.x_test), from_logits=False),
        "scores_without_decision": test_scores(setting, raw(setting.x_test)),
        "pick": result.best_config.describe(),
        "pick_trial": picked.chosen.number,
        "pick_recipe": picked.recipe,
        "decision": result.best_config.decision.describe() if result.best_config.decision else "",
        "reason": picked.reason,
        "gain": picked.gain,  # the leader's over the incumbent (None: the incumbent led)
        "gain_se": picked.gain_se,
        "phases": {**result.seconds, "search_recipes": _recipe_seconds(result.study)},
        "trial_cost": trial_cost(result.study),
        "curves": curves(result.study),
        "trials_run": sum(t.state.is_finished() for t in result.study.trials),
        # the stop's reason (None: the whole budget); code before the early stop has none
        "stopped": getattr(result.search, "stopped_early", lambda: None)(),
        "confirmation": [{k: row.get(k) for k in CONFIRMATION_KEYS} for row in picked.table],
        "result": result,  # for the regret analysis; dropped before the row is saved
    }


def regret(setting, result, budget, seed, top=REGRET_TOP) -> tuple[list[dict], dict]:
    """The search's top trials by validation, its recipe trials and its pick, each retrained
    on the whole pool (the benchmark's seed) and scored on test under its own decision rule
    (the pick: the rule tuned on its confirmation runs); and their test probabilities, by
    trial number."""
    from optuna.trial import TrialState

    from lossearch.study.state import decision_of

    study, picked = result.study, result.selection
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "config" in t.user_attrs and "duplicate_of" not in t.user_attrs
    ]
    maximize = result.direction == "maximize"
    ranked = sorted(trials, key=lambda t: t.value, reverse=maximize)
    keep = {t.number for t in ranked[:top]} | {picked.chosen.number}
    keep |= {t.number for t in trials if t.user_attrs.get("recipe")}
    rows, probabilities = [], {}
    for trial in (t for t in trials if t.number in keep):
        config = _config(setting, trial.user_attrs["config"])
        chosen = trial.number == picked.chosen.number
        decision = picked.decision if chosen else decision_of(trial)
        prob = probabilities[trial.number] = _test_probabilities(setting, config, budget, seed)
        decided = prob if decision is None else decision.apply(prob.reshape(len(prob), -1))
        rows.append(
            {
                "trial": trial.number,
                "recipe": trial.user_attrs.get("recipe"),
                "config": config.describe(),
                "value": trial.value,
                "chosen": chosen,
                "test": test_scores(setting, decided, from_logits=False),
                "test_raw": test_scores(setting, prob, from_logits=False),
            }
        )
    return rows, probabilities


def _test_probabilities(setting, config, budget, seed) -> np.ndarray:
    model = _train(setting, config, budget, seed)
    return _probabilities(keras_numpy(model(setting.x_test)), setting.task)


def ensemble_check(setting, result, budget, seed, probabilities) -> dict | None:
    """The confirmed candidates (every row of the selection's table but those an early stop
    set aside: models a search trains anyway) averaged, against the incumbent retrained on
    as many seeds and averaged; both from the regret analysis's retraining on the pool, raw
    probabilities (no decision rule), scored on test. None with a single candidate."""
    picked = result.selection
    members = [
        row["trial"]
        for row in picked.table
        if not row.get("set_aside") and row["trial"] in probabilities
    ]
    if len(members) < 2 or picked.incumbent is None or picked.incumbent.number not in members:
        return None
    config = _config(setting, result.study.trials[picked.incumbent.number].user_attrs["config"])
    seeds = [probabilities[picked.incumbent.number]] + [
        _test_probabilities(setting, config, budget, seed + k) for k in range(1, len(members))
    ]
    candidates = np.mean([probabilities[t] for t in members], axis=0)
    return {
        "members": members,
        "incumbent": picked.incumbent.number,
        "test": test_scores(setting, candidates, from_logits=False),
        "seed_ensemble_test": test_scores(setting, np.mean(seeds, axis=0), from_logits=False),
    }


def keras_numpy(tensor):
    import keras

    return keras.ops.convert_to_numpy(tensor)


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


def curves(study) -> list[dict]:
    """Every trial's validation objective after each epoch (over the folds, in order), its
    state and config: enough to replay another pruner or stopping rule on the same trials
    (benchmarks/pruner_replay.py)."""
    return [
        {
            "trial": t.number,
            "state": t.state.name,
            "recipe": t.user_attrs.get("recipe"),
            "config": t.user_attrs.get("config"),
            "duplicate_of": t.user_attrs.get("duplicate_of"),
            "values": [t.intermediate_values[s] for s in sorted(t.intermediate_values)],
            "value": t.value,
        }
        for t in study.trials
    ]


def run_optuna_by_hand(setting, budget, seed, objective=None):
    """What a user writes without lossearch: TPE over the same space, the top trial refit."""
    import optuna

    from lossearch import LossConfig
    from lossearch.backends.optuna import OptunaSource
    from lossearch.metrics import default_minority_classes, resolve_objective
    from lossearch.search_space import SearchSpace

    space = SearchSpace.load(SPACE[setting.task], task=setting.task)
    scorer = resolve_objective(objective, setting.task)
    x_tr, x_va, y_tr, y_va = _holdout(setting, seed)
    part = efficacy_data.Setting(setting.name, setting.task, x_tr, y_tr, x_va, y_va)
    names = [str(i) for i in range(len(part.counts))]
    n_samples = len(y_tr) if setting.task == "multilabel" else None

    def trial_objective(trial):
        config = space.sample(
            OptunaSource(trial), class_counts=part.counts, task=setting.task, n_samples=n_samples
        )
        model = _train(part, config, budget, seed + trial.number)
        prob = _probabilities(keras_numpy(model(x_va)), setting.task)
        trial.set_user_attr("config", config.to_dict())
        return scorer(
            _labels(part, y_va),
            prob.reshape(len(prob), -1),
            task=setting.task,
            class_names=names,
            minority_classes=default_minority_classes(part.counts, setting.task),
        )

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        direction=scorer.direction, sampler=optuna.samplers.TPESampler(seed=seed)
    )
    study.optimize(trial_objective, n_trials=budget["n_trials"], catch=(Exception,))
    best = LossConfig.from_dict(study.best_trial.user_attrs["config"])
    config = _config(setting, best.to_dict())
    model = _train(setting, config, budget, seed)
    return {"scores": test_scores(setting, model(setting.x_test)), "pick": config.describe()}


def _holdout(setting, seed):
    """The plain loops' one 80/20 split of the labelled data (stratified unless multi-label)."""
    from sklearn.model_selection import train_test_split

    stratify = None if setting.task == "multilabel" else setting.y
    return train_test_split(
        setting.x, setting.y, test_size=0.2, stratify=stratify, random_state=seed
    )


def run_keras_tuner_hyperband(setting, budget, seed):
    """What a Keras Tuner user writes: stock Hyperband (``max_epochs`` = the epoch budget,
    factor 3; it decides its own number of trials) over the same space through
    ``LossHyperModel``, on one hold-out split, its best trial refit like the plain loop's."""
    import keras
    import keras_tuner as kt

    from lossearch.integrations.keras_tuner import LossHyperModel, best_config

    binary = setting.task == "binary"
    x_tr, x_va, y_tr, y_va = _holdout(setting, seed)
    counts = np.bincount(y_tr, minlength=len(setting.counts)).tolist()

    def build_model():
        model = model_for(setting)()
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
    config = _config(setting, best.to_dict())
    model = _train(setting, config, budget, seed)
    return {
        "scores": test_scores(setting, model(setting.x_test)),
        "pick": config.describe(),
        "trials": trials,
    }


def _run_method(setting, method, objective, budget, seed) -> dict:
    if method.startswith("recipe:"):
        return run_recipe(setting, method.split(":", 1)[1], budget, seed)
    if method == "ce+class_weight":
        return run_class_weight(setting, budget, seed)
    if method in ("optuna_by_hand", "plain_optuna"):  # plain_optuna: time_to_pick's name
        return run_optuna_by_hand(setting, budget, seed, objective)
    if method == "keras_tuner_hyperband":
        return run_keras_tuner_hyperband(setting, budget, seed)
    if method == "recipes_only":
        from lossearch.search_space import SearchSpace

        recipes = SearchSpace.load(SPACE[setting.task], task=setting.task).recipes
        return run_lossearch(setting, budget, seed, objective, n_trials=len(recipes))
    if method == "optuna_like_for_like":
        return run_lossearch(setting, budget, seed, objective, selection="best")
    if method == "lossearch_unpruned":
        import optuna

        return run_lossearch(setting, budget, seed, objective, pruner=optuna.pruners.NopPruner())
    if method == "lossearch_whole_budget":  # every sampled config trained every epoch
        import optuna

        pruner = optuna.pruners.NopPruner()
        return run_lossearch(setting, budget, seed, objective, pruner=pruner, early_stop=False)
    if method == "lossearch_margin_1":  # the early stop's default until 2026-12-03
        from lossearch.stopping import NoChallengerStopper

        stopper = NoChallengerStopper(margin=1.0)
        return run_lossearch(setting, budget, seed, objective, early_stop=stopper)
    if method == "lossearch_epoch_patience":  # patience in whole trainings' epochs
        from lossearch.stopping import NoChallengerStopper

        stopper = NoChallengerStopper(evidence="epochs")
        return run_lossearch(setting, budget, seed, objective, early_stop=stopper)
    return run_lossearch(setting, budget, seed, objective)


def run_job(job: dict) -> dict:
    """One (problem, seed, method, objective): load, run, score, time. In a worker process.
    ``job["code"]``: a folder holding another commit's ``lossearch`` package, run instead."""
    if job.get("code"):  # first on the path: ahead of the editable install's finder
        sys.path.insert(0, job["code"])
    import lossearch

    lossearch.limit_threads(1)
    if "problem" in job:
        problem = efficacy_data.BY_NAME[job["problem"]]
        setting = efficacy_data.load_problem(problem, job["seed"])
        described = {"base": problem.base, "role": problem.role, "model": problem.model}
    else:  # the (dataset, task, imbalance) form of time_to_pick and the pruning benchmark
        setting = efficacy_data.load(job["dataset"], job["task"], job["imbalance"], job["seed"])
        described = {}
    start = time.perf_counter()
    out = _run_method(setting, job["method"], job.get("objective"), job["budget"], job["seed"])
    seconds = time.perf_counter() - start
    result = out.pop("result", None)
    if job.get("regret") and result is not None:  # not part of the method's own time
        out["regret"], probabilities = regret(setting, result, job["budget"], job["seed"])
        out["ensemble"] = ensemble_check(setting, result, job["budget"], job["seed"], probabilities)
    out.update(
        setting=setting.name,
        task=setting.task,
        seed=job["seed"],
        method=job["method"],
        objective=job.get("objective"),
        seconds=seconds,
        budget=job["budget"],
        counts=setting.counts,
        commit=job.get("commit"),
        date=time.strftime("%Y-%m-%d"),
        **described,
    )
    return out


# -- driver ---------------------------------------------------------------------------------


def commit() -> str:
    """The commit the code was at, ``+`` when the working tree differed from it."""
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # the results are this benchmark's output, not code that measured them
    dirty = git(
        "status", "--porcelain", "--untracked-files=no", "--", "lossearch", "benchmarks",
        ":!benchmarks/results",
    )  # fmt: skip
    return head + ("+" if dirty.strip() else "")


def load_runs(path: Path = RUNS) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(row) -> tuple:
    return (row["setting"], row["seed"], row["method"], row.get("objective"))


def plan(args, done: set) -> list[dict]:
    jobs = []
    for problem in efficacy_data.PROBLEMS:
        if (
            args.problems
            and problem.name not in args.problems
            and problem.role not in args.problems
        ):
            continue
        for seed in args.seeds[problem.model]:
            for method in methods_for(problem.task):
                if args.methods and method not in args.methods:
                    continue
                if method in FIRST_SEED_ONLY and seed != args.seeds[problem.model][0]:
                    continue
                objectives = [None]  # recipes score every objective from one training
                if method in SEARCH_METHODS:
                    objectives = list(problem.objectives)
                    if method in DEFAULT_OBJECTIVE_ONLY:
                        objectives = objectives[:1]
                for objective in objectives:
                    if (problem.name, seed, method, objective) in done:
                        continue
                    jobs.append(
                        {
                            "problem": problem.name,
                            "seed": seed,
                            "method": method,
                            "objective": objective,
                            "budget": args.budget[problem.model],
                            "commit": args.commit,
                            "regret": method == "lossearch",
                        }
                    )
    # the longest jobs first, so the pool's last minutes are not one search alone
    return sorted(
        jobs, key=lambda j: (j["method"] not in SEARCH_METHODS, j["method"] != "lossearch")
    )


def measure(args, runs_path: Path = RUNS) -> list[dict]:
    budgets = list(args.budget.values())
    planned = {(j["problem"], j["seed"], j["method"], j["objective"]) for j in plan(args, set())}
    # measured again: this run's rows of a method to redo or of another budget; the rows
    # outside this run (other problems, methods or seeds) are kept as they are
    rows = [
        r
        for r in load_runs(runs_path)
        if _key(r) not in planned or (r["method"] not in args.redo and r["budget"] in budgets)
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
            shown = ", ".join(f"{k} {v:.3f}" for k, v in list(row["scores"].items())[:3])
            what = row["method"] + (f" [{row['objective']}]" if row["objective"] else "")
            print(f"{row['setting']} s{row['seed']} {what} {row['seconds']:.0f} s: {shown}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10-minute smoke run")
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md")
    parser.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 16)))
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds of every problem")
    parser.add_argument("--problems", nargs="+", help="problem names, or a role")
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument("--redo", nargs="+", default=[], help="measure these methods again")
    args = parser.parse_args(argv)
    if args.quick:
        budget = {"n_trials": 8, "epochs": 6, "batch_size": 32}
        args.budget = dict.fromkeys(MODELS, budget)
        args.seeds = dict.fromkeys(MODELS, args.seeds or [0])
        args.problems = args.problems or ["digits-LT100", "ecoli3", "synthA-LT100"]
    else:
        # the tabular and 8x8 problems take about 2 hours on 2 cores (--jobs 2); the MNIST
        # problems (3 seeds) several more: name them with --problems to run them apart
        budget = {"n_trials": 12, "epochs": 12, "batch_size": 32}
        args.budget = dict.fromkeys(MODELS, budget)
        args.seeds = {m: args.seeds or ([0, 1] if m == "mlp" else [0, 1, 2]) for m in MODELS}
    args.commit = commit()
    return args


def main(argv=None) -> int:
    from efficacy_report import render_and_write

    args = parse_args(argv)
    runs = RESULTS / ("efficacy_quick.jsonl" if args.quick else "efficacy_runs.jsonl")
    rows = load_runs(runs) if args.render else measure(args, runs)
    budgets = list(args.budget.values())
    rows = [r for r in rows if r["budget"] in budgets and "role" in r]
    render_and_write(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
