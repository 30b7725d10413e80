"""Observation encoders: state MLP, small CNN + spatial softmax for images, and their combination.

All encoders work per observation step: inputs (B, To, ...) are folded to (B * To, ...) and the
output features are flattened over To into the U-Net's global condition (B, To * Do).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StateEncoder(nn.Module):
    """Normalised state (N, Ds) -> (N, out_dim) with a 2-layer Mish MLP."""

    def __init__(self, state_dim: int, out_dim: int = 64, hidden_dim: int = 128) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(state_dim, hidden_dim), nn.Mish(), nn.Linear(hidden_dim, out_dim))

    def forward(self, s: Tensor) -> Tensor:
        return self.net(s)


class SpatialSoftmax(nn.Module):
    """Feature map (N, C, H, W) -> (N, 2K) expected image coordinates in [-1, 1] of K keypoints.

    A 1x1 conv maps C to K keypoint maps; a softmax over H*W per map gives a distribution whose
    expected (x, y) is returned (Levine et al., 2016; Finn et al., 2016).
    """

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.kp = nn.Conv2d(in_channels, num_keypoints, 1)
        self.num_keypoints = num_keypoints

    def forward(self, f: Tensor) -> Tensor:
        n, _, h, w = f.shape
        logits = self.kp(f).flatten(2)  # (N, K, H*W)
        prob = logits.softmax(-1)
        ys = torch.linspace(-1, 1, h, device=f.device, dtype=f.dtype)
        xs = torch.linspace(-1, 1, w, device=f.device, dtype=f.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)  # (H*W, 2)
        return (prob @ grid).reshape(n, -1)  # (N, 2K)


class ImageEncoder(nn.Module):
    """Image in [0, 1] (N, 3, H, W) -> (N, out_dim): 4 conv layers (stride 2, 1, 2, 1), GroupNorm, ReLU,
    spatial softmax keypoints, then a linear layer. Sized for CPU (about 0.1 M parameters at 32 channels).
    """

    def __init__(
        self, out_dim: int = 64, channels: int = 32, num_keypoints: int = 32, n_groups: int = 8
    ) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        c_in = 3
        for stride in (2, 1, 2, 1):
            layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1), nn.GroupNorm(n_groups, c), nn.ReLU()]
            c_in = c
        self.backbone = nn.Sequential(*layers)
        self.pool = SpatialSoftmax(c, num_keypoints)
        self.proj = nn.Sequential(nn.Linear(2 * num_keypoints, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, img: Tensor) -> Tensor:
        # Centre the [0, 1] pixels so the first conv sees zero-mean-ish input.
        return self.proj(self.pool(self.backbone(img * 2.0 - 1.0)))


class ObsEncoder(nn.Module):
    """{state (B, To, Ds) normalised, images (B, To, 3, H, W) in [0, 1]} -> (B, To * Do) features.

    Do = state_feat_dim + n_cams * image_feat_dim. One ImageEncoder per camera (no weight sharing).
    """

    def __init__(self, state_dim: int, image_keys: list[str], n_obs_steps: int, state_feat_dim: int,
                 image_feat_dim: int, image_channels: int, num_keypoints: int, n_groups: int = 8) -> None:
        super().__init__()
        self.state = StateEncoder(state_dim, state_feat_dim)
        self.image_keys = list(image_keys)
        # ModuleDict keys cannot contain '.', so cameras are indexed by position.
        self.images = nn.ModuleList(
            [ImageEncoder(image_feat_dim, image_channels, num_keypoints, n_groups) for _ in self.image_keys]
        )
        self.n_obs_steps = n_obs_steps
        self.feat_dim = state_feat_dim + len(self.image_keys) * image_feat_dim
        self.out_dim = n_obs_steps * self.feat_dim

    def forward(self, state: Tensor, images: dict[str, Tensor]) -> Tensor:
        b, to = state.shape[:2]
        feats = [self.state(state.reshape(b * to, -1))]
        for key, enc in zip(self.image_keys, self.images):
            img = images[key]
            feats.append(enc(img.reshape(b * to, *img.shape[2:])))
        return torch.cat(feats, dim=-1).reshape(b, to * self.feat_dim)
