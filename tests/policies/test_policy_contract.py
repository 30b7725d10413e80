"""Policy contract: shapes, purity, reproducibility, loss masking, images, checkpoints, config errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from policy_fixtures import DA, TO, T, make_obs, make_spec, make_stats, tiny_config

from robo.config import ConfigError, load_config
from robo.policies import (
    EMA,
    POLICIES,
    CheckpointError,
    DiffusionConfig,
    FlowConfig,
    load_policy,
    make_config,
    make_policy,
)


def _policy(name: str, cams: tuple[str, ...] = (), **kw):
    torch.manual_seed(0)
    return make_policy(name, tiny_config(name, **kw), make_spec(cams), make_stats()).eval()


def _batch(b: int = 4, cams: tuple[str, ...] = (), seed: int = 0) -> dict:
    obs = make_obs(b, cams, seed)
    rng = np.random.default_rng(seed + 1)
    batch = {k: torch.from_numpy(v) for k, v in obs.items()}
    batch["action"] = torch.from_numpy(rng.uniform(-2, 2, (b, T, DA)).astype(np.float32))
    batch["action_is_pad"] = torch.zeros(b, T, dtype=torch.bool)
    return batch


# -- registry and inference contract -----------------------------------------------------------------
def test_registry_names_match_config_names():
    assert set(POLICIES) == {"diffusion", "flow"}
    for name, cls in POLICIES.items():
        assert cls.config_class().name == name


def test_predict_chunk_shape_dtype_and_purity(name):
    p = _policy(name)
    obs = make_obs(3)
    before = copy.deepcopy(obs)
    chunk = p.predict_chunk(obs, seed=0)
    assert chunk.shape == (3, T - TO + 1, DA)
    assert chunk.dtype == torch.float32 and not chunk.requires_grad
    assert torch.isfinite(chunk).all()
    assert obs.keys() == before.keys()
    for k in obs:
        np.testing.assert_array_equal(obs[k], before[k])
    # torch input gives the same answer as numpy input, and is not modified either
    tobs = {k: torch.from_numpy(v.copy()) for k, v in obs.items()}
    torch.testing.assert_close(p.predict_chunk(tobs, seed=0), chunk)
    np.testing.assert_array_equal(tobs["observation.state"].numpy(), before["observation.state"])


def test_predict_chunk_is_reproducible_and_seed_dependent(name):
    p = _policy(name)
    obs = make_obs(2)
    a = p.predict_chunk(obs, seed=1)
    b = p.predict_chunk(obs, generator=torch.Generator().manual_seed(1))
    c = p.predict_chunk(obs, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_predict_chunk_has_no_hidden_state(name):
    """Calls in any order give the same answers: no queue, no mode."""
    p = _policy(name)
    o1, o2 = make_obs(1, seed=1), make_obs(1, seed=2)
    first = p.predict_chunk(o1, seed=0)
    p.predict_chunk(o2, seed=5)
    assert torch.equal(p.predict_chunk(o1, seed=0), first)


def test_predict_chunk_rejects_wrong_obs_shape(name):
    p = _policy(name)
    obs = make_obs(2)
    obs["observation.state"] = obs["observation.state"][:, :1]
    with pytest.raises(ValueError, match="observation.state"):
        p.predict_chunk(obs, seed=0)
    with pytest.raises(ValueError, match="missing key 'observation.state'"):
        p.predict_chunk({}, seed=0)


def test_num_inference_steps_override_changes_result(name):
    p = _policy(name)
    obs = make_obs(2)
    a = p.predict_chunk(obs, seed=0, num_inference_steps=1)
    b = p.predict_chunk(obs, seed=0, num_inference_steps=3)
    assert a.shape == b.shape and not torch.equal(a, b)


def test_ddpm_sampler_option_works():
    p = _policy("diffusion", sampler="ddpm", num_inference_steps=20)
    chunk = p.predict_chunk(make_obs(2), seed=0)
    assert chunk.shape == (2, T - TO + 1, DA) and torch.isfinite(chunk).all()


# -- training contract -------------------------------------------------------------------------------
def test_compute_loss_is_scalar_differentiable_and_pure(name):
    p = _policy(name).train()
    batch = _batch()
    before = {k: v.clone() for k, v in batch.items()}
    loss = p.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [q.grad for q in p.parameters() if q.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    for k in batch:
        assert torch.equal(batch[k], before[k])


def test_padded_steps_do_not_enter_the_loss(name):
    """Targets at padded steps are masked out: with a network that ignores its input (outputs 0), garbage
    in padded actions leaves the loss unchanged, while garbage at a real step changes it."""
    p = _policy(name).train()
    p.net.forward = lambda x, t, cond: torch.zeros_like(x) + 0.0 * cond.sum()
    batch = _batch()
    batch["action_is_pad"][:, 5:] = True
    other = {k: v.clone() for k, v in batch.items()}
    other["action"][:, 5:] += 10.0

    def loss(b):
        return p.compute_loss(b, generator=torch.Generator().manual_seed(0)).item()

    l1, l2 = loss(batch), loss(other)
    assert l1 == pytest.approx(l2, rel=1e-6)
    other["action_is_pad"][:] = False
    if name == "flow":  # velocity target x1 - x0 depends on the actions (epsilon target does not)
        assert loss(other) > 2 * l1
    # masked mean, not a sum: all-valid and masked losses are on the same scale
    assert 0.2 < l1 < 20


def test_images_path_trains_cnn_and_changes_prediction(name):
    cams = ("front",)
    p = _policy(name, cams).train()
    batch = _batch(8, cams)  # 8 x (To, 32, 32, 3) uint8
    assert batch["observation.images.front"].dtype == torch.uint8
    loss = p.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    conv = p.obs_encoder.images[0].backbone[0].weight
    assert conv.grad is not None and conv.grad.abs().sum() > 0
    p.eval()
    obs = make_obs(2, cams)
    a = p.predict_chunk(obs, seed=0)
    obs2 = dict(obs)
    obs2["observation.images.front"] = 255 - obs["observation.images.front"]
    b = p.predict_chunk(obs2, seed=0)
    assert a.shape == (2, T - TO + 1, DA) and not torch.equal(a, b)


def test_zero_range_stats_are_guarded(name):
    stats = make_stats()
    stats["action"]["min"][1] = stats["action"]["max"][1] = 0.25  # constant action dim
    stats["observation.state"]["std"][0] = 0.0
    torch.manual_seed(0)
    p = make_policy(name, tiny_config(name), make_spec(), stats)
    x = torch.tensor([[0.5, 0.25]])
    y = p.action_norm(x)
    assert torch.isfinite(y).all() and y[0, 1] == 0.0
    torch.testing.assert_close(p.action_norm.inverse(y), x)
    assert torch.isfinite(p.predict_chunk(make_obs(1), seed=0)).all()


# -- checkpoints -------------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_predictions(name, tmp_path):
    p = _policy(name, ("wrist",))
    with torch.no_grad():  # make the weights differ from a fresh seed-0 init
        for q in p.parameters():
            q.add_(0.01 * torch.randn_like(q))
    p.save(tmp_path / "ckpt")
    assert sorted(f.name for f in (tmp_path / "ckpt").iterdir()) == [
        "config.yaml", "model.safetensors", "spec.json", "stats.json"
    ]
    q = load_policy(tmp_path / "ckpt")
    assert type(q) is type(p) and q.config == p.config and q.stats == p.stats
    assert q.spec.to_json() == p.spec.to_json()
    obs = make_obs(2, ("wrist",))
    assert torch.equal(q.predict_chunk(obs, seed=3), p.predict_chunk(obs, seed=3))


@pytest.mark.parametrize("victim", ["config.yaml", "model.safetensors", "stats.json", "spec.json"])
def test_load_policy_names_missing_or_corrupt_file(tmp_path, victim):
    p = _policy("flow")
    d = tmp_path / "ckpt"
    p.save(d)
    (d / victim).write_bytes(b"\x00{not valid")
    with pytest.raises(CheckpointError, match=victim):
        load_policy(d)
    (d / victim).unlink()
    with pytest.raises(CheckpointError, match=victim) as e:
        load_policy(d)
    assert "\n" not in str(e.value)


def test_load_policy_on_a_run_folder_points_at_its_checkpoint(tmp_path):
    _policy("flow").save(tmp_path / "run" / "checkpoint")
    with pytest.raises(CheckpointError, match=r"is not a policy checkpoint: .*did you mean .*run/checkpoint\?"):
        load_policy(tmp_path / "run")


def test_load_policy_rejects_weights_of_another_config(tmp_path):
    _policy("flow").save(tmp_path / "a")
    _policy("flow", down_dims=(8, 16)).save(tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_policy(tmp_path / "a")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_load_policy_refuses_nonfinite_weights_or_stats_naming_the_file(tmp_path, bad):
    from safetensors.torch import load_file, save_file

    p = _policy("flow")
    p.save(tmp_path / "w")
    weights = tmp_path / "w" / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[key].view(-1)[0] = bad
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=rf"model.safetensors: tensor '{key}' has 1 NaN or inf values") as e:
        load_policy(tmp_path / "w")
    assert "\n" not in str(e.value)
    p.save(tmp_path / "s")
    stats = json.loads((tmp_path / "s" / "stats.json").read_text())
    stats["action"]["std"][1] = bad
    (tmp_path / "s" / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(CheckpointError, match=r"stats.json: 'action.std.1' is NaN or inf"):
        load_policy(tmp_path / "s")


def test_robo_eval_of_a_nan_checkpoint_fails_at_start_naming_it(tmp_path, capsys):
    """A checkpoint that fits PandaLift-v0 but whose weights are NaN: `robo eval` used to run it (rc 0)."""
    import gymnasium as gym

    import robo.sim  # noqa: F401  (registers the tasks)
    from robo.cli import main as robo_main
    from robo.spec import ACTION, STATE

    env = gym.make("PandaLift-v0")
    spec = env.unwrapped.robo_spec
    env.close()
    stats = {k: {s: [v] * spec[k].shape[0] for s, v in (("min", -1.0), ("max", 1.0), ("mean", 0.0), ("std", 0.5))}
             for k in (STATE, ACTION)}
    torch.manual_seed(0)
    policy = make_policy("flow", tiny_config("flow"), spec, stats)
    with torch.no_grad():
        for q in policy.parameters():
            q.fill_(float("nan"))
    policy.save(tmp_path / "ckpt")
    rc = robo_main(["eval", "--policy", str(tmp_path / "ckpt"), "--task", "PandaLift-v0", "--episodes", "1",
                    "--videos", "0", "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and str(tmp_path / "ckpt" / "model.safetensors") in err and "NaN or inf" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("content", [b"\x00" * 64, b"\xff\xfe garbage", b"{not json", b"[1, 2]"])
def test_a_garbage_train_info_is_named_in_one_line(tmp_path, content):
    from robo.policies import checkpoint_task, read_train_info

    _policy("flow").save(tmp_path / "run" / "checkpoint")
    assert checkpoint_task(tmp_path / "run") is None and read_train_info(tmp_path / "run") == {}  # none: fine
    info = tmp_path / "run" / "checkpoint" / "train_info.json"
    info.write_bytes(content)
    for read in (checkpoint_task, read_train_info):
        with pytest.raises(CheckpointError, match=r"train_info.json: ") as e:
            read(tmp_path / "run")
        assert str(info) in str(e.value) and "\n" not in str(e.value)
    from robo.learn.pipeline import resolve_base  # `robo train --residual --base <run>` reads it too

    with pytest.raises(CheckpointError, match=r"train_info.json: ") as e:
        resolve_base("PandaLift-v0", str(tmp_path / "run"), "", None)
    assert str(info) in str(e.value)
    info.write_text(json.dumps({"env_id": "PandaLift-v0", "dataset": "data/x"}))
    assert checkpoint_task(tmp_path / "run") == "PandaLift-v0"


def test_saved_stats_are_plain_json(tmp_path):
    stats = make_stats()
    stats["action"]["min"] = np.array(stats["action"]["min"])
    torch.manual_seed(0)
    p = make_policy("diffusion", tiny_config("diffusion"), make_spec(), stats)
    p.save(tmp_path)
    assert json.loads((tmp_path / "stats.json").read_text())["action"]["min"] == [-2.0, -1.5]


# -- EMA ---------------------------------------------------------------------------------------------
def test_ema_warmup_update_and_copy():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.995)
    assert ema.current_decay() == pytest.approx(0.1)  # warm-up: (1 + 0) / (10 + 0)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()
    torch.testing.assert_close(ema.shadow["weight"], w0 + 0.9)
    for _ in range(2000):
        ema.update()
    assert ema.current_decay() == 0.995
    other = torch.nn.Linear(3, 2)
    ema.copy_to(other)
    torch.testing.assert_close(other.weight, net.weight, atol=1e-4, rtol=0)
    restored = EMA(torch.nn.Linear(3, 2))
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 2001 and torch.equal(restored.shadow["weight"], ema.shadow["weight"])


# -- config validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, kw, field",
    [
        (DiffusionConfig, {"n_action_steps": 16}, "n_action_steps"),
        (DiffusionConfig, {"n_obs_steps": 0}, "n_obs_steps"),
        (DiffusionConfig, {"horizon": 10, "backbone": "unet"}, "horizon"),  # the U-Net halves T twice
        (DiffusionConfig, {"down_dims": (64, 100)}, "down_dims"),
        (DiffusionConfig, {"kernel_size": 4}, "kernel_size"),
        (DiffusionConfig, {"num_inference_steps": 101}, "num_inference_steps"),
        (DiffusionConfig, {"num_inference_steps": 0}, "num_inference_steps"),
        (DiffusionConfig, {"beta_schedule": "cosine"}, "beta_schedule"),
        (DiffusionConfig, {"prediction_type": "v"}, "prediction_type"),
        (DiffusionConfig, {"name": "flow"}, "name"),
        (FlowConfig, {"t_sampling": "logit"}, "t_sampling"),
        (FlowConfig, {"t_beta_alpha": 0.0}, "t_beta_alpha"),
        (FlowConfig, {"image_channels": 12}, "image_channels"),
        (FlowConfig, {"time_embed_dim": 7}, "time_embed_dim"),
    ],
)
def test_config_validation_names_field_and_value(cls, kw, field):
    with pytest.raises(ValueError, match=field) as e:
        cls(**kw)
    msg, value = str(e.value), next(iter(kw.values()))
    shown = str(value[-1]) if isinstance(value, tuple) else str(value)  # e.g. down_dims=(64, 100) -> "100"
    assert "\n" not in msg and shown in msg


def test_defaults_are_the_documented_cpu_recipe():
    d, f = DiffusionConfig(), FlowConfig()
    assert (d.n_obs_steps, d.horizon, d.n_action_steps, d.down_dims, d.kernel_size) == (2, 16, 8, (64, 128, 256), 5)
    assert (d.num_train_timesteps, d.num_inference_steps, d.beta_schedule) == (100, 10, "squaredcos_cap_v2")
    assert (d.prediction_type, d.clip_sample, d.sampler, d.backbone) == ("sample", True, "ddim", "mlp")
    assert (f.num_inference_steps, f.horizon, f.down_dims) == (4, 16, (64, 128, 256))
    FlowConfig(num_inference_steps=1)  # K = 1 allowed


def test_make_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("horizon: 8\nn_action_steps: 4\ndown_dims: [32, 64]\n")
    cfg = make_config("flow", path, ["num_inference_steps=1"])
    assert isinstance(cfg, FlowConfig) and cfg.horizon == 8 and cfg.down_dims == (32, 64)
    assert cfg.num_inference_steps == 1
    with pytest.raises(ConfigError, match="n_action_steps"):
        load_config(DiffusionConfig, None, ["horizon=8"])  # default n_action_steps=8 > 8 - 2 + 1
    with pytest.raises(ValueError, match="policy name"):
        make_config("consistency")
