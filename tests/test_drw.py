"""Deferred re-weighting inside a real model.fit."""

import keras
import numpy as np
import pytest

from lossearch import LossConfig, callbacks_for
from lossearch.callbacks import DeferredReweighting, first_final_epoch
from tests.helpers import mlp

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

COUNTS = [400, 40, 4]


class RecordLossValue(keras.callbacks.Callback):
    """Per epoch: the switch value and the loss of a fixed probe batch."""

    def __init__(self, loss, probe):
        super().__init__()
        self.loss, self.probe, self.seen = loss, probe, []

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            x, y = self.probe
            self.seen.append(
                (
                    float(keras.ops.convert_to_numpy(self.loss.reweighting)),
                    float(self.loss(y, self.model(x))),
                    [float(v) for v in self.model.get_weights()[0].ravel()[:3]],
                )
            )


@pytest.mark.parametrize(("drw_start", "switch_epoch"), [(2, 2), (0.5, 2)])
def test_weights_are_one_before_drw_start_and_the_scheme_after(drw_start, switch_epoch):
    config = LossConfig("ldam", weights="inverse", drw_start=drw_start, class_counts=COUNTS)
    loss = config.build()
    plain = LossConfig("ldam", class_counts=COUNTS).build()
    weighted = LossConfig("ldam", weights="inverse", class_counts=COUNTS).build()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = mlp(5, 3)
    model.compile(optimizer="sgd", loss=loss)
    recorder = RecordLossValue(loss, (x[:16], y[:16]))
    model.fit(
        x, y, epochs=4, batch_size=16, verbose=0, callbacks=[*callbacks_for(config), recorder]
    )
    switches = [s for s, _, _ in recorder.seen]
    assert switches == [0.0] * switch_epoch + [1.0] * (4 - switch_epoch)
    assert first_final_epoch(config, 4) == switch_epoch  # where the pruner starts judging
    # The loss the model trains on equals the unweighted loss before the switch
    # and the inverse-weighted one after it.
    preds = model(x[:16])
    assert float(loss(y[:16], preds)) == pytest.approx(float(weighted(y[:16], preds)), rel=1e-6)
    loss.reweighting.assign(0.0)
    assert float(loss(y[:16], preds)) == pytest.approx(float(plain(y[:16], preds)), rel=1e-6)


def test_drw_changes_the_training_trajectory_only_from_the_start_epoch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 5)).astype("float32")
    y = rng.integers(0, 3, 48)

    def train(config):
        keras.utils.set_random_seed(3)
        model = mlp(5, 3)
        model.compile(optimizer="sgd", loss=config.build())
        model.fit(
            x, y, epochs=3, batch_size=48, shuffle=False, verbose=0, callbacks=callbacks_for(config)
        )
        return model.get_weights()[0]

    unweighted = train(LossConfig("ce", class_counts=COUNTS))
    deferred_past_end = train(LossConfig("ce", weights="inverse", drw_start=3, class_counts=COUNTS))
    deferred_early = train(LossConfig("ce", weights="inverse", drw_start=1, class_counts=COUNTS))
    np.testing.assert_allclose(unweighted, deferred_past_end, rtol=1e-6)
    assert not np.allclose(unweighted, deferred_early)


def test_callbacks_for_returns_nothing_without_drw():
    assert callbacks_for(LossConfig("focal")) == []
    (callback,) = callbacks_for(
        LossConfig("ce", weights="inverse", drw_start=3, class_counts=[5, 1])
    )
    assert isinstance(callback, DeferredReweighting)


def test_a_loss_without_a_switch_inside_the_epochs_is_final_from_the_first():
    assert first_final_epoch(LossConfig("focal"), 20) == 0
    never = LossConfig("ce", weights="inverse", drw_start=25, class_counts=[5, 1])
    assert first_final_epoch(never, 20) == 0  # trains unweighted throughout
    late = LossConfig("ce", weights="inverse", drw_start=0.75, class_counts=[5, 1])
    assert first_final_epoch(late, 20) == 15


def test_drw_callback_without_deferred_loss_is_a_clear_error():
    model = mlp(5, 3)
    model.compile(optimizer="sgd", loss=LossConfig("ce").build())
    with pytest.raises(ValueError, match="deferred weights"):
        model.fit(
            np.zeros((4, 5)), np.zeros(4), epochs=1, verbose=0, callbacks=[DeferredReweighting(1)]
        )
