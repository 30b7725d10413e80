"""Fields and validation shared by the action-chunk policy configs (diffusion, flow).

Shape letters: To = n_obs_steps, T = horizon, Ta = n_action_steps, K = num_inference_steps.
The action window of a training sample is aligned with its observations: action index 0 is the
action taken at the first of the To observation steps, so the current step is index To - 1 and
`predict_chunk` returns the T - To + 1 actions from there on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ChunkPolicyConfig:
    """Common config of the U-Net action-chunk policies."""

    name: str = ""
    """Registry name (`make_policy`); written to config.yaml so `load_policy` finds the class."""
    n_obs_steps: int = 2
    """To: observation steps the policy conditions on (current one and To - 1 before it)."""
    horizon: int = 16
    """T: length of the predicted action window (starts at the first observation step)."""
    n_action_steps: int = 8
    """Ta: default execution horizon for the chunk executor; <= T - To + 1."""
    num_inference_steps: int = 10
    """K: denoising / integration steps at inference."""
    backbone: Literal["unet", "mlp"] = "mlp"
    """Denoiser network: residual FiLM MLP (the CPU recipe: fast, and the best measured on the state
    tasks) or 1-D temporal U-Net (images, long chunks)."""
    down_dims: tuple[int, ...] = (64, 128, 256)
    """U-Net channels per level; T is halved len(down_dims) - 1 times."""
    mlp_dims: tuple[int, ...] = (512, 512, 512)
    """MLP backbone: width of each residual block (all equal)."""
    kernel_size: int = 5
    """Temporal conv kernel size of the U-Net (odd)."""
    n_groups: int = 8
    """GroupNorm groups in the U-Net and image encoder; divides down_dims and image_channels."""
    time_embed_dim: int = 128
    """Size of the diffusion-step / flow-time embedding (even)."""
    state_norm: Literal["mean_std", "min_max"] = "mean_std"
    """State normalisation from dataset stats (actions are always min-max to [-1, 1])."""
    state_feat_dim: int = 64
    """State MLP output size per observation step."""
    image_feat_dim: int = 64
    """Image encoder output size per camera per observation step."""
    image_channels: int = 32
    """Channels of the small CNN image encoder."""
    num_keypoints: int = 32
    """Spatial-softmax keypoints of the image encoder."""

    def __post_init__(self) -> None:
        self.down_dims = tuple(int(d) for d in self.down_dims)
        self.mlp_dims = tuple(int(d) for d in self.mlp_dims)
        if self.backbone not in ("unet", "mlp"):
            raise ValueError(f"backbone={self.backbone!r} is not one of ['unet', 'mlp']")
        if not self.mlp_dims or len(set(self.mlp_dims)) != 1 or self.mlp_dims[0] < 1:
            raise ValueError(f"mlp_dims={self.mlp_dims} must be one or more equal positive widths")
        if self.n_obs_steps < 1:
            raise ValueError(f"n_obs_steps={self.n_obs_steps} is out of range [1, inf]")
        if self.horizon < self.n_obs_steps:
            raise ValueError(f"horizon={self.horizon} is out of range [n_obs_steps={self.n_obs_steps}, inf]")
        max_ta = self.horizon - self.n_obs_steps + 1
        if not 1 <= self.n_action_steps <= max_ta:
            raise ValueError(
                f"n_action_steps={self.n_action_steps} is out of range "
                f"[1, horizon - n_obs_steps + 1 = {max_ta}]"
            )
        if self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps={self.num_inference_steps} is out of range [1, inf]")
        if not self.down_dims:
            raise ValueError("down_dims=() must have at least one level")
        if self.n_groups < 1:
            raise ValueError(f"n_groups={self.n_groups} is out of range [1, inf]")
        for d in self.down_dims:
            if d < 1 or d % self.n_groups:
                raise ValueError(
                    f"down_dims={self.down_dims} must be positive multiples of n_groups={self.n_groups}"
                )
        factor = 2 ** (len(self.down_dims) - 1)
        if self.backbone == "unet" and self.horizon % factor:
            raise ValueError(
                f"horizon={self.horizon} must be divisible by 2**(len(down_dims) - 1) = {factor}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={self.kernel_size} must be an odd integer >= 1")
        if self.time_embed_dim < 4 or self.time_embed_dim % 2:
            raise ValueError(f"time_embed_dim={self.time_embed_dim} must be an even integer >= 4")
        if self.state_norm not in ("mean_std", "min_max"):
            raise ValueError(f"state_norm={self.state_norm!r} is not one of ['mean_std', 'min_max']")
        for f in ("state_feat_dim", "image_feat_dim", "num_keypoints"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f}={getattr(self, f)} is out of range [1, inf]")
        if self.image_channels < 1 or self.image_channels % self.n_groups:
            raise ValueError(
                f"image_channels={self.image_channels} must be a positive multiple of "
                f"n_groups={self.n_groups}"
            )
