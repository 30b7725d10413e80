"""Exponential moving average of a model's parameters (and float buffers), for the BC trainer.

    ema = EMA(policy, decay=0.995)
    for batch in loader:
        loss = policy.compute_loss(batch); loss.backward(); opt.step()
        ema.update()                     # after every optimiser step
    ema.copy_to(policy_for_eval)         # or policy itself before saving

Warm-up (on by default): the decay used at update n is min(decay, (1 + n) / (10 + n)), so early
averages are not dominated by the random initialisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copy of `model`'s floating-point parameters and buffers.

    Args:
        model: the module being trained (its state dict keys define the shadow's keys).
        decay: the target decay in [0, 1).
        warmup: use min(decay, (1 + n) / (10 + n)) at update n.
    """

    def __init__(self, model: nn.Module, decay: float = 0.995, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay!r} is out of range [0, 1)")
        self.model = model
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next `update()` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module | None = None) -> None:
        """shadow <- d * shadow + (1 - d) * current, for float tensors; other tensors are copied."""
        d = self.current_decay()
        shadow, current = [], []
        for k, v in (model or self.model).state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                shadow.append(s)
                current.append(v.detach().to(s.device))
            else:
                s.copy_(v)
        if shadow:  # one fused multi-tensor op instead of a Python loop over every tensor (CPU step time)
            torch._foreach_lerp_(shadow, current, 1 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module | None = None) -> None:
        """Load the averaged weights into `model` (default: the tracked model)."""
        (model or self.model).load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
