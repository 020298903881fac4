"""Independent NumPy (float64) references of every loss formula in the README.

Written straight from the formulas, with no code shared with lossearch, so a
mismatch means one of the two is wrong.
"""

import numpy as np

RCE_FLOOR = 1e-4


def log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax_loss(family, onehot, z, params, weights=None, smoothing=0.0, counts=None):
    """Per-sample loss of a softmax family; ``onehot`` and ``z`` are (..., C)."""
    C = z.shape[-1]
    t = onehot * (1 - smoothing) + smoothing / C
    lp = log_softmax(z)
    p = np.exp(lp)
    n = None if counts is None else np.asarray(counts, dtype=np.float64)
    prior = None if n is None else n / n.sum()
    if family == "ce":
        loss = -(t * lp).sum(-1)
    elif family == "focal":
        alpha = 1.0 if params.get("alpha") is None else np.asarray(params["alpha"])
        loss = -(alpha * t * (1 - p) ** params["gamma"] * lp).sum(-1)
    elif family == "poly1":
        loss = -(t * lp).sum(-1) + params["epsilon"] * (1 - (t * p).sum(-1))
    elif family == "logit_adjusted":
        loss = -(t * log_softmax(z + params["tau"] * np.log(prior))).sum(-1)
    elif family == "ldam":
        delta = params["max_margin"] * (n.min() / n) ** 0.25
        loss = -(t * log_softmax(params["scale"] * (z - delta * onehot))).sum(-1)
    elif family == "vs":
        scale = (n / n.max()) ** params["gamma"]
        loss = -(t * log_softmax(scale * z + params["tau"] * np.log(prior))).sum(-1)
    elif family == "nce":
        nce = (t * lp).sum(-1) / lp.sum(-1)
        rce = -(p * np.log(np.maximum(t, RCE_FLOOR))).sum(-1)
        loss = params["alpha"] * nce + params["beta"] * rce
    else:
        raise KeyError(family)
    if weights is not None:
        loss = loss * (onehot * np.asarray(weights)).sum(-1)
    return loss


def sigmoid_loss(family, y, z, params, task, weights=None, smoothing=0.0, counts=None):
    """Per-sample loss of a sigmoid family; ``y`` and ``z`` are (..., C)."""
    t = y * (1 - smoothing) + 0.5 * smoothing
    if family == "logit_adjusted":
        z = z + params["tau"] * np.log(counts[1] / counts[0])
    p = sigmoid(z)
    log_p, log_1mp = np.log(p), np.log(1 - p)
    if weights is None:
        w_pos, w_neg = 1.0, 1.0
    elif task == "binary":
        w_neg, w_pos = weights
    else:
        w_pos, w_neg = np.asarray(weights), 1.0
    if family in ("ce", "logit_adjusted"):
        pos, neg = -log_p, -log_1mp
    elif family == "focal":
        g, a = params["gamma"], params.get("alpha")
        pos, neg = -((1 - p) ** g) * log_p, -(p**g) * log_1mp
        if a is not None:
            pos, neg = a * pos, (1 - a) * neg
    elif family == "poly1":
        e = params["epsilon"]
        pos, neg = -log_p + e * (1 - p), -log_1mp + e * p
    elif family == "pos_weighted_bce":
        pos, neg = -np.asarray(params["pos_weight"]) * log_p, -log_1mp
    elif family == "asymmetric":
        pm = np.maximum(p - params["clip"], 0.0)
        pos = -((1 - p) ** params["gamma_pos"]) * log_p
        neg = -(pm ** params["gamma_neg"]) * np.log(1 - pm)
    else:
        raise KeyError(family)
    return (w_pos * t * pos + w_neg * (1 - t) * neg).mean(-1)


def effective_number_weights(counts, beta):
    n = np.asarray(counts, dtype=np.float64)
    w = (1 - beta) / (1 - beta**n)
    return w * len(n) / w.sum()
