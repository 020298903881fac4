"""A lossearch search read back from its storage, for ``export``, ``report`` and
``sync-mlflow``: an Optuna study, or a Keras Tuner project (``keras_tuner:///FOLDER``).

:class:`StoredStudy` reads what :mod:`lossearch.study.state` says a search stores, through its
:class:`~lossearch.study.state.StudyState`, and asks :mod:`lossearch.selection` which trial is
the pick and which the baseline, so that every reader names the same trials as the live
search did. It needs neither the data nor MLflow.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lossearch.config import LossConfig
from lossearch.selection import Selection, top_trial
from lossearch.study import state as keys
from lossearch.study.state import OptunaStudyState, StudyState, TrialRecord, open_state, record_of
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

    state: StudyState
    name: str

    @classmethod
    def load(cls, storage: str, study_name: str, *, require_results=True) -> StoredStudy:
        """Raises ``ValueError`` for a bad URL, an unknown study, or (``require_results``)
        a study without a completed lossearch trial."""
        stored = cls(open_state(storage, study_name), study_name)
        if require_results and not stored.records():
            raise ValueError(f"study: {study_name!r} has no completed lossearch trial yet.")
        return stored

    @classmethod
    def of_study(cls, study) -> StoredStudy:
        """An Optuna study already open."""
        return cls(OptunaStudyState(study), study.study_name)

    @property
    def study(self) -> Any:
        """The Optuna study (None for a Keras Tuner search)."""
        return getattr(self.state, "study", None)

    def completed(self) -> list:
        return [t for t in self.state.trials(("COMPLETE",)) if keys.is_lossearch_trial(t)]

    def records(self) -> list[TrialRecord]:
        return [record_of(t) for t in self.completed()]

    @property
    def objective(self) -> str:
        """The objective's name: lossearch's, else the study's own metric name, else value."""
        return self.state.attrs.get(keys.OBJECTIVE, self.state.metric_name)

    @property
    def own(self) -> bool:
        """A study of the user's own (``lossearch.optuna.suggest_loss`` in their objective),
        not one ``optimize`` ran: nothing was chosen, the best trial stands."""
        return keys.OBJECTIVE not in self.state.attrs

    @property
    def direction(self) -> str:
        return self.state.direction

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
            return not self.state.trials(("RUNNING", "WAITING"))
        return self._closing_selection() is not None

    def _closing_selection(self) -> Selection | None:
        stored = self.state.attrs.get(keys.CHOICE)
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
        return dict(Counter(t.state for t in self.state.trials()))

    def failures(self) -> list[str]:
        trials = self.state.trials()
        return [t.user_attrs[keys.FAIL_REASON] for t in trials if keys.FAIL_REASON in t.user_attrs]

    def importances(self) -> dict[str, float]:
        """As the search computed them when it closed; else (a study of your own, or one
        still running) computed now (Optuna's fANOVA; a Keras Tuner search has none)."""
        stored = self.state.attrs.get(keys.IMPORTANCES)
        if stored is not None and self.closed:
            return dict(stored)
        return {} if self.study is None else importances_of(self.study)

    def search_run(self, storage: str | None = None) -> SearchRun:
        """What the search's MLflow parent run was opened with (a study that lossearch did
        not start: its name and backend)."""
        saved = self.state.attrs.get(keys.PARENT_RUN_DESCRIPTION)
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
        return self.summary_with(
            self._closing_selection() or self.selection(),
            importances=self.importances(),
            seconds=dict(self.state.attrs.get(keys.SECONDS) or {}),
            closed=self.closed,
            test=self.state.attrs.get(keys.TEST),
        )

    def summary_with(
        self,
        selection: Selection,
        *,
        importances: dict[str, float],
        seconds: dict[str, float],
        closed: bool,
        test: dict | None,
    ) -> SearchSummary:
        """The one builder of a :class:`SearchSummary`: the stored trials' counts, history and
        failures, around a selection and timings that a live search passes from memory
        (``SearchResult.search_summary``) and a stored one reads back (:meth:`summary`)."""
        return SearchSummary(
            name=self.name,
            objective=self.objective,
            direction=self.direction,
            selection=selection,
            states=self.states(),
            history=[(r.number, r.value) for r in self.records()],
            failures=self.failures(),
            importances=importances,
            seconds=seconds,
            closed=closed,
            test=test,
            stopped_early=self.state.attrs.get(keys.STOPPED_EARLY),
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
