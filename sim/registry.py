"""Task ids robo can drive, robo's own and a user's, and their scripted experts.

`resolve_task(task_id)` finds a task, in this order:

1. an id in Gymnasium's registry (robo's `Panda*` ids register on `import robo.sim`);
2. Gymnasium's `package.module:Id` form: the module is imported (registering Id), then Id;
3. an id registered by an installed plug-in: a package that declares, in its pyproject.toml,

       [project.entry-points."robo.tasks"]
       my_tasks = "my_tasks"              # a module whose import calls gymnasium.register(...)

   (the value may also be "module:function", a function that registers them). Plug-ins are loaded the
   first time an id is not found, and by `task_ids()`.

A task is a Gymnasium env following docs/CONTRACTS.md "Tasks" (robo's `PandaTaskEnv` subclasses do);
its scripted expert is named by the env class: `scripted_expert = "my_tasks.reach:ReachExpert"` (or the
class itself), a factory `(env, noise=0.0, seed=None)` of an object with `reset()` and `act(obs)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

ENTRY_POINT_GROUP = "robo.tasks"
HOW_TO_ADD = 'add a task with --task package.module:Id or a "robo.tasks" entry point (README "Your own tasks")'


@dataclass
class PluginLoad:
    """One `robo.tasks` entry point and the outcome of loading it."""

    name: str
    value: str
    package: str
    error: str | None = None


_plugins: list[PluginLoad] | None = None


def load_plugins() -> list[PluginLoad]:
    """Import every installed `robo.tasks` plug-in once; a broken one is reported, not raised."""
    global _plugins
    if _plugins is None:
        _plugins = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            load = PluginLoad(ep.name, ep.value, ep.value.split(":")[0].split(".")[0])
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, type):
                    obj()  # "module:function": a registration hook
            except Exception as e:  # noqa: BLE001 - one broken plug-in must not hide the others
                load.error = f"{type(e).__name__}: {' '.join(str(e).split())}"
            _plugins.append(load)
    return _plugins


def resolve_task(task_id: str) -> gym.envs.registration.EnvSpec:
    """The Gymnasium spec of a task id (see the module doc); one-line ValueError if there is none."""
    import robo.sim  # noqa: F401  (registers robo's own tasks)

    if not isinstance(task_id, str) or not task_id:
        raise ValueError(f"task id must be a non-empty string, got {task_id!r}")
    if task_id in gym.registry:
        return gym.registry[task_id]
    if ":" in task_id:
        module, _, env_id = task_id.partition(":")
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - ImportError or an error inside the user's module
            raise ValueError(f"task '{task_id}': cannot import module '{module}' ({type(e).__name__}: {e})") from None
        if env_id not in gym.registry:
            raise ValueError(f"task '{task_id}': importing '{module}' registered no Gymnasium id '{env_id}'")
        return gym.registry[env_id]
    load_plugins()
    if task_id in gym.registry:
        return gym.registry[task_id]
    raise ValueError(f"unknown task id '{task_id}'; robo can drive: {', '.join(task_ids())}; {HOW_TO_ADD}")


def make_env(task_id: str, /, **kwargs: Any) -> gym.Env:
    """Create a task env by id (any form `resolve_task` takes); kwargs go to the env constructor (any
    name, `task_id` included: robo/Cell-v0 takes one)."""
    return gym.make(resolve_task(task_id), **kwargs)


def _entry_module(spec: gym.envs.registration.EnvSpec) -> str:
    entry = spec.entry_point
    if isinstance(entry, str):
        return entry.split(":")[0]
    return getattr(entry, "__module__", "") or ""


def task_ids() -> list[str]:
    """Every task robo can drive: robo's own and those registered by `robo.tasks` plug-ins."""
    import robo.sim  # noqa: F401

    packages = ["robo.sim"] + [p.package for p in load_plugins() if p.error is None]
    return sorted(
        k for k, spec in gym.registry.items()
        if any(_entry_module(spec) == p or _entry_module(spec).startswith(p + ".") for p in packages)
    )


def env_class(task_id: str) -> type:
    """The env class of a task (imported, not constructed)."""
    spec = resolve_task(task_id)
    entry = spec.entry_point
    if isinstance(entry, str):
        return gym.envs.registration.load_env_creator(entry)
    return entry  # type: ignore[return-value]


def expert_factory(env_cls: type) -> Callable[..., Any] | None:
    """The scripted-expert factory an env class names (`scripted_expert`), or None."""
    named = getattr(env_cls, "scripted_expert", None)
    if named is None or callable(named):
        return named
    module, _, attr = str(named).partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{env_cls.__name__}.scripted_expert={named!r} cannot be imported ({e})") from None


def make_expert(env: gym.Env, noise: float = 0.0, seed: int | None = None) -> Any:
    """The scripted expert of `env` (wrapped or not): `reset()`, `act(obs) -> action`."""
    cls = type(env.unwrapped)
    factory = expert_factory(cls)
    if factory is None:
        raise ValueError(f"no scripted expert for {cls.__name__}: set `scripted_expert = \"module:Class\"` on the "
                         f"env class (README \"Your own tasks\"), or record demos with a teleop device")
    return factory(env, noise=noise, seed=seed)
