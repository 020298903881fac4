"""What each backend supports, declared once and checked once, in the settings, before
anything is opened: every combination is supported (and tested), or refused with what to do
instead. Nothing the user passes is silently ignored.

Example:
    >>> CAPABILITIES["keras_tuner"].supports("timeout")
    True
    >>> CAPABILITIES["keras_tuner"].supports("pruner")
    False
"""

from __future__ import annotations

from dataclasses import dataclass

# the search settings a backend may lack, and what it means to pass one
FEATURES = {
    "timeout": "no trial starts after `timeout` seconds",
    "threads": "`n_jobs` > 1: trials in threads of one process",
    "stopper": "`early_stop` given a stopper of your own (lossearch.stopping)",
    "sampler": "an Optuna sampler",
    "pruner": "an Optuna pruner",
    "storage": "an Optuna storage URL or object",
    "callbacks": "Optuna study callbacks",
}


@dataclass(frozen=True)
class Capabilities:
    """A backend's supported :data:`FEATURES`, and for the rest what to use instead."""

    backend: str
    supported: frozenset[str]
    instead: dict[str, str]

    def supports(self, feature: str) -> bool:
        return feature in self.supported


CAPABILITIES = {
    "optuna": Capabilities("optuna", frozenset(FEATURES), {}),
    "keras_tuner": Capabilities(
        "keras_tuner",
        frozenset({"timeout", "stopper"}),
        {
            "threads": "run one process per worker in Keras Tuner's distributed mode",
            "sampler": "pass tuner= ('hyperband', 'bayesian', 'random', 'grid')",
            "pruner": "Hyperband (tuner='hyperband', the default) stops weak trials early",
            "storage": "the tuner's project folder keeps the search; name it with study_name=",
            "callbacks": "read the trials from the result or MLflow",
        },
    ),
}


def refuse_unsupported(backend: str, asked: dict[str, bool]) -> None:
    """Raise ``ValueError`` for each feature in ``asked`` (True: the user passed it) that
    ``backend`` lacks, naming the argument and what to do instead."""
    capabilities = CAPABILITIES[backend]
    missing = [f for f, wanted in asked.items() if wanted and not capabilities.supports(f)]
    if missing:
        first = missing[0]
        raise ValueError(
            f"{_argument(first)}: the {backend} backend does not support {FEATURES[first]}; "
            f"{capabilities.instead[first]}."
        )


def _argument(feature: str) -> str:
    return {"threads": "n_jobs", "stopper": "early_stop"}.get(feature, feature)
