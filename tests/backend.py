"""Backend-neutral test helpers: the loss and metric tests run under TensorFlow, JAX and PyTorch.

Keras has no backend-neutral gradient, so ``value_and_grad`` asks the active backend directly.
"""

import keras
import numpy as np

BACKEND = keras.backend.backend()


def value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to ``x``, both as NumPy arrays."""
    if BACKEND == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(x))
        return np.asarray(value), np.asarray(grad)
    if BACKEND == "torch":
        import torch

        z = torch.tensor(x, requires_grad=True)
        value = fn(z)
        (grad,) = torch.autograd.grad(value, z)
        return value.detach().cpu().numpy(), grad.cpu().numpy()
    import tensorflow as tf

    z = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = fn(z)
    return value.numpy(), tape.gradient(value, z).numpy()


def to_numpy(x):
    """A backend tensor (even one that requires grad) as a NumPy array."""
    return keras.ops.convert_to_numpy(keras.ops.stop_gradient(x))
