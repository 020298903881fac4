"""A lossearch study read back from its storage, for ``export``, ``report`` and ``sync-mlflow``.

:class:`StoredStudy` reads what :mod:`lossearch.records` says a study stores, and asks
:mod:`lossearch.selection` which trial is the pick and which the baseline, so that every
reader names the same trials as the live search did. It needs neither the data nor
MLflow.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lossearch import records as keys
from lossearch.config import LossConfig
from lossearch.records import TrialRecord, record_of
from lossearch.selection import Selection, top_trial
from lossearch.summary import SearchRun, SearchSummary

NOT_CLOSED = "the top trial so far (search not closed)"
OWN_STUDY = "the study's best trial (a study of your own: lossearch chose nothing)"


@dataclass
class StoredStudy:
    """A lossearch study read from its storage: its records, selection and summary.

    Example:
        >>> stored = StoredStudy.load("sqlite:///lossearch.db", "digits")  # doctest: +SKIP
        >>> stored.best_config().to_json("best_loss.json")                  # doctest: +SKIP
    """

    study: Any  # optuna.Study
    name: str

    @classmethod
    def load(cls, storage: str, study_name: str, *, require_results=True) -> StoredStudy:
        """Raises ``ValueError`` for a bad URL, an unknown study, or (``require_results``)
        a study without a completed lossearch trial."""
        from lossearch.storages import load_study

        stored = cls(load_study(storage, study_name), study_name)
        if require_results and not stored.records():
            raise ValueError(f"study: {study_name!r} has no completed lossearch trial yet.")
        return stored

    def completed(self) -> list:
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return [t for t in trials if keys.is_lossearch_trial(t)]

    def records(self) -> list[TrialRecord]:
        return [record_of(t) for t in self.completed()]

    @property
    def objective(self) -> str:
        """The objective's name: lossearch's, else the study's own metric name, else value."""
        names = getattr(self.study, "metric_names", None) or ["value"]
        return self.study.user_attrs.get(keys.OBJECTIVE, names[0])

    @property
    def own(self) -> bool:
        """A study of the user's own (``lossearch.optuna.suggest_loss`` in their objective),
        not one ``optimize`` ran: nothing was chosen, the best trial stands."""
        return keys.OBJECTIVE not in self.study.user_attrs

    @property
    def direction(self) -> str:
        return self.study.direction.name.lower()

    def selection(self) -> Selection:
        """The search's selection, as it closed; before it closes, the top trial so far (a
        study of the user's own: its best trial)."""
        return self._closing_selection() or top_trial(
            self._records_or_raise(),
            self.direction == "maximize",
            OWN_STUDY if self.own else NOT_CLOSED,
        )

    @property
    def closed(self) -> bool:
        """Whether the search has closed and kept its selection in the study (a study of
        the user's own: whether no trial still runs or waits)."""
        if self.own:
            from optuna.trial import TrialState

            busy = (TrialState.RUNNING, TrialState.WAITING)
            return not self.study.get_trials(deepcopy=False, states=busy)
        return self._closing_selection() is not None

    def _closing_selection(self) -> Selection | None:
        stored = self.study.user_attrs.get(keys.CHOICE)
        return Selection.from_dict(stored, self._records_or_raise()) if stored else None

    def _records_or_raise(self) -> list[TrialRecord]:
        records = self.records()
        if not records:
            raise ValueError(f"study: {self.name!r} has no completed lossearch trial yet.")
        return records

    def chosen(self) -> TrialRecord:
        return self.selection().chosen

    def baseline(self) -> TrialRecord | None:
        return self.selection().baseline

    def best_config(self) -> LossConfig:
        """The chosen config, with the decision rule the search tuned for it."""
        return self.selection().config

    def states(self) -> dict[str, int]:
        return dict(Counter(t.state.name for t in self.study.get_trials(deepcopy=False)))

    def failures(self) -> list[str]:
        trials = self.study.get_trials(deepcopy=False)
        return [t.user_attrs[keys.FAIL_REASON] for t in trials if keys.FAIL_REASON in t.user_attrs]

    def importances(self) -> dict[str, float]:
        """As the search computed them when it closed; else (a study of your own, or one
        still running) computed now."""
        stored = self.study.user_attrs.get(keys.IMPORTANCES)
        if stored is not None and self.closed:
            return dict(stored)
        return importances_of(self.study)

    def search_run(self, storage: str | None = None) -> SearchRun:
        """What the search's MLflow parent run was opened with (a study that lossearch did
        not start: its name and backend)."""
        saved = self.study.user_attrs.get(keys.PARENT_RUN_DESCRIPTION)
        if saved:
            run = SearchRun.from_dict(self.name, saved)
        else:
            run = SearchRun(
                self.name, {"study_name": self.name, "backend": "optuna"}, {"study_name": self.name}
            )
        return (
            run
            if storage is None
            else SearchRun(run.name, run.params, {**run.tags, "storage": storage})
        )

    def summary(self) -> SearchSummary:
        """What the study shows: the same object a live search's result gives."""
        closing = self._closing_selection()
        return SearchSummary(
            name=self.name,
            objective=self.objective,
            direction=self.direction,
            selection=closing or self.selection(),
            states=self.states(),
            history=[(r.number, r.value) for r in self.records()],
            failures=self.failures(),
            importances=self.importances(),
            seconds=dict(self.study.user_attrs.get(keys.SECONDS, {})),
            closed=self.closed,
            test=self.study.user_attrs.get(keys.TEST),
            stopped_early=self.study.user_attrs.get(keys.STOPPED_EARLY),
        )


def importances_of(study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA), or ``{}`` where it has too little to go on."""
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "few trials per regime" on small studies
            return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # too few trials or no varying parameter
        return {}


def load_best_config(storage: str, study_name: str) -> LossConfig:
    """The chosen (else the best) config of a stored study, without the data.

    Example:
        >>> config = load_best_config("sqlite:///lossearch.db", "digits")  # doctest: +SKIP
    """
    return StoredStudy.load(storage, study_name).best_config()
