"""Checkpoint directory I/O: config.yaml, model.safetensors, stats.json, spec.json.

    save_checkpoint(policy, dir)          # policy: any ChunkPolicy
    name, cfg_path, state, stats, spec = read_checkpoint(dir)

Files are written to a temporary name and renamed, so a crash never leaves a half-written file.
Every failure to read is a `CheckpointError` (a ValueError) with a one-line message naming the file,
including weights or statistics that are not finite (NaN or inf).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch import Tensor

from robo.config import ConfigError, read_yaml, save_config
from robo.spec import Spec

from .normalize import stats_to_json

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
STATS_FILE = "stats.json"
SPEC_FILE = "spec.json"


class CheckpointError(ValueError):
    """A checkpoint file is missing or unreadable; the message names the file."""


def checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint folder for `path`: its `checkpoint/` subfolder when `path` is a training run."""
    path = Path(path)
    return path / "checkpoint" if (path / "checkpoint").is_dir() else path


TRAIN_INFO_FILE = "train_info.json"


def read_train_info(directory: str | Path) -> dict[str, Any]:
    """The train_info.json that `robo train bc` writes beside the weights of a checkpoint (or of the run
    folder holding it): {} when there is none, `CheckpointError` naming the file when it is unreadable."""
    path = checkpoint_dir(directory) / TRAIN_INFO_FILE
    if not path.is_file():
        return {}
    info = _read_json(path)
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def checkpoint_task(directory: str | Path) -> str | None:
    """The task id a checkpoint (or the run folder holding it) was trained on, from its train_info.json;
    None when it records none. `CheckpointError` naming the file when that file is unreadable."""
    task = read_train_info(directory).get("env_id")
    return task if isinstance(task, str) and task else None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def save_checkpoint(policy: Any, directory: str | Path) -> Path:
    """Write the four checkpoint files of `policy` (a ChunkPolicy) into `directory` (created)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_config(policy.config, d / CONFIG_FILE)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    tmp = d / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"policy": policy.config.name})
    tmp.replace(d / WEIGHTS_FILE)
    _write_json(d / STATS_FILE, stats_to_json(policy.stats))
    _write_json(d / SPEC_FILE, policy.spec.to_json())
    return d


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({' '.join(str(e).split())})") from None


def _first_nonfinite(value: Any, where: str = "") -> str | None:
    """Where in a JSON value (nested dicts and lists) the first NaN or inf number is, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the top level"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _first_nonfinite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def read_checkpoint(directory: str | Path) -> tuple[str, Path, dict[str, Tensor], dict[str, Any], Spec]:
    """(policy name, config.yaml path, weights, stats, spec) of a checkpoint directory."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {d}")
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():  # most often a run folder given for its checkpoint/ subfolder
        hint = f"; did you mean {d / 'checkpoint'}?" if (d / "checkpoint" / CONFIG_FILE).is_file() else ""
        raise CheckpointError(f"{d} is not a policy checkpoint: {CONFIG_FILE} not found{hint}")
    try:
        raw = read_yaml(cfg_path)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{cfg_path}: missing the policy 'name' key")
    wpath = d / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"checkpoint file not found: {wpath}")
    try:
        state = load_file(str(wpath))
    except Exception as e:  # safetensors raises its own error types for corrupt headers/data
        raise CheckpointError(f"{wpath}: corrupt safetensors file ({type(e).__name__}: {e})") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            n_bad = int((~tensor.isfinite()).sum())
            raise CheckpointError(f"{wpath}: tensor '{key}' has {n_bad} NaN or inf values of {tensor.numel()}")
    stats = _read_json(d / STATS_FILE)
    bad = _first_nonfinite(stats)
    if bad is not None:
        raise CheckpointError(f"{d / STATS_FILE}: '{bad}' is NaN or inf")
    spec_path = d / SPEC_FILE
    try:
        spec = Spec.from_json(_read_json(spec_path))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{spec_path}: invalid spec ({e})") from None
    return name, cfg_path, state, stats, spec
