"""How `model.fit` epochs map onto training steps, so a run stops at exactly its step count."""

import math


def check_steps(name, value):
    """A step count or batch size given on the command line must be a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def plan_epochs(total_steps, checkpoint_every, step):
    """`(steps_per_epoch, epochs, initial_epoch)` for training from `step` to `total_steps`.

    An epoch is `gcd(checkpoint_every, total_steps, step)` steps: the run ends at exactly
    `total_steps` (never rounded up to a multiple of `checkpoint_every`), and a run resumed
    from any checkpoint step starts on an epoch boundary. Checkpoints and validation are
    gated to every `checkpoint_every` steps and the last step (`callbacks.Periodic`).
    """
    check_steps("steps", total_steps)
    check_steps("checkpoint_every", checkpoint_every)
    per_epoch = math.gcd(checkpoint_every, total_steps, step)
    return per_epoch, total_steps // per_epoch, step // per_epoch
