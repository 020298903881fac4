"""lossearch._noise.paired_std: the standard error both the early stop and the confirmation
judge a gain by. What two sides share cancels; what they do not is counted."""

import math

import numpy as np

from lossearch._noise import bootstrap_std, paired_std


def _accuracy(y, p):
    return float(np.mean(p.argmax(-1) == y))


def _predictions(y, right):
    """One-hot predictions, right where ``right`` is True, else the next class."""
    guess = np.where(right, y, (y + 1) % 3)
    return np.eye(3)[guess]


def test_what_both_sides_share_cancels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    shared = rng.random(400) < 0.7  # both right on the same 70% of the samples
    extra = ~shared & (rng.random(400) < 0.05)  # and ours on a few more
    ours, theirs = _predictions(y, shared | extra), _predictions(y, shared)
    paired = paired_std(_accuracy, y, [ours], [theirs])
    alone = bootstrap_std(lambda i: _accuracy(y[i], theirs[i]), len(y))
    assert 0 < paired < alone / 2  # a few disagreements, not 400 coin flips
    share = extra.mean()  # the gain is the share of samples only ours gets right
    assert math.isclose(paired, np.sqrt(share * (1 - share) / 400), rel_tol=0.3)


def test_identical_sides_have_no_noise_and_a_missing_side_has_no_estimate():
    y = np.arange(30) % 3
    p = _predictions(y, np.arange(30) % 2 == 0)
    assert paired_std(_accuracy, y, [p], [p]) == 0.0
    assert math.isnan(paired_std(_accuracy, y, [], [p]))


def test_several_runs_a_side_are_averaged_before_the_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    runs = [_predictions(y, rng.random(200) < 0.8) for _ in range(3)]
    one = paired_std(_accuracy, y, runs[:1], [runs[2]])
    two = paired_std(_accuracy, y, runs[:2], [runs[2]])
    assert 0 < two < one  # the mean of two runs disagrees less with the third
