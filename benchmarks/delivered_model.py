"""The delivered model is its loss: ``result.model`` against the chosen loss trained by hand.

Per (problem, seed): ``optimize`` with its defaults over the recipes (``n_trials`` = the
recipes: the pick is a recipe, which is what most searches deliver), then the picked loss
trained by hand as a user would from the exported config: ``keras.utils.set_random_seed
(seed)``, build, compile with Adam(1e-3), ``fit`` on the same data with the same epochs and
batch size, the loss told the data's class counts, the exported decision rule applied to
its probabilities. Both scored on the problem's test set. Equal only when the clustered 90%
interval of the difference lies inside ±0.5 points (two one-sided tests).

Run: .venv/bin/python benchmarks/delivered_model.py [--seeds 0 1 2 3 4] [--epochs 12]
     [--jobs 2]   (`--render` rewrites the section from the saved JSON)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from efficacy import _config, _train, commit, keras_numpy, run_lossearch, test_scores
from efficacy_data import BY_NAME, load_problem
from efficacy_report import equivalent
from image_searches import METRIC
from sections import machine, publish
from time_to_pick import RESULTS, interval

PATH = RESULTS / "delivered_model.json"
# development problems of 4 base datasets, the 8x8 images' CNN among them
PROBLEMS = ("digits-img-LT50", "segment-LT50", "optdigits-LT100", "texture-LT100")


def delivered_and_by_hand(job: dict) -> dict:
    """One search and its pick trained by hand; in a worker process of one thread."""
    import numpy as np

    import lossearch
    from lossearch.search_space import SearchSpace

    lossearch.limit_threads(1)
    problem, seed, budget = BY_NAME[job["problem"]], job["seed"], job["budget"]
    setting = load_problem(problem, seed)
    recipes = len(SearchSpace.load("long_tail", task="multiclass").recipes)
    out = run_lossearch(setting, budget, seed, n_trials=recipes)
    picked = out.pop("result").best_config
    config = _config(setting, picked.to_dict())  # told the data's own counts
    model = _train(setting, config, budget, seed)
    logits = keras_numpy(model(setting.x_test))
    prob = np.exp(logits - logits.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    decided = picked.decision.apply(prob) if picked.decision else prob
    by_hand = test_scores(setting, decided, from_logits=False)
    return {
        "setting": setting.name,
        "seed": seed,
        "pick": out["pick"],
        "delivered": out["scores"][METRIC],
        "by_hand": by_hand[METRIC],
        "loss_alone": out["scores_without_decision"][METRIC],
    }


def render(saved: dict) -> str:
    rows, meta = saved["rows"], saved["meta"]
    pairs = [
        (BY_NAME[r["setting"]].cluster(r["seed"]), r["delivered"] - r["by_hand"]) for r in rows
    ]
    stat, word = equivalent(pairs)
    identical = sum(abs(d) < 1e-9 for _, d in pairs)
    lines = [
        "## The delivered model is its loss",
        "",
        f"Measured {saved['date']} with `benchmarks/delivered_model.py` on {meta['machine']}: "
        f"code {meta['commit']}, {meta['epochs']} epochs, batch 32, `optimize` with its "
        "defaults over the recipes of the long-tail space; by hand: the exported loss, told "
        "the data's class counts, trained with the same seed, data, epochs and batch size, "
        "and the exported decision rule applied. Test balanced accuracy, points.",
        "",
        "| problem | seed | pick | delivered | by hand | delivered − by hand | loss alone "
        "(no decision) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['seed']} | {r['pick']} | {r['delivered']:.4f} | "
            f"{r['by_hand']:.4f} | {(r['delivered'] - r['by_hand']) * 100:+.2f} | "
            f"{r['loss_alone']:.4f} |"
        )
    lines += [
        "",
        f"- delivered − by hand: {stat['mean'] * 100:+.2f} points, 90% interval "
        f"{interval(stat, 100, '{:+.2f}')} ({stat['n']} searches, {stat['bases']} base "
        f"datasets; identical in {identical} of {len(pairs)}) → within ±0.5 (two one-sided "
        f"tests): **{word}**.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args(argv)
    if not args.render:
        budget = {"n_trials": 0, "epochs": args.epochs, "batch_size": 32}
        jobs = [
            {"problem": p, "seed": s, "budget": budget} for p in args.problems for s in args.seeds
        ]
        with ProcessPoolExecutor(args.jobs, get_context("spawn"), max_tasks_per_child=1) as pool:
            rows = list(pool.map(delivered_and_by_hand, jobs))
        meta = {"machine": machine(), "commit": commit(), "epochs": args.epochs}
        PATH.write_text(
            json.dumps({"date": time.strftime("%Y-%m-%d"), "meta": meta, "rows": rows}, indent=1)
        )
    publish("delivered-model", PATH, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
