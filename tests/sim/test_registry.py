"""robo.sim.registry / robo.sim.scenes: task ids of every form, plug-ins, experts, scenes from any package."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from robo.sim import registry
from robo.sim.registry import make_env, make_expert, resolve_task, task_ids
from robo.sim.scenes import ASSETS, load_scene, resolve_scene, robo_assets

EXAMPLE = Path(__file__).parent / "plugin_example"
REACH = "ExampleTasks/PandaReach-v0"


@pytest.fixture
def clean_registry(monkeypatch):
    """Forget plug-ins loaded and ids registered by a test (Gymnasium's registry is process-global)."""
    before = set(gym.registry)
    monkeypatch.setattr(registry, "_plugins", None)
    yield
    for task in set(gym.registry) - before:
        del gym.registry[task]
    for name in [m for m in sys.modules if m.split(".")[0] in ("example_tasks", "broken_tasks", "tmp_tasks")]:
        del sys.modules[name]


def install_dist_info(site: Path, name: str, entry_points: str) -> None:
    """What an installer writes for a distribution: its metadata, with the entry points."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_robo_ids_resolve_and_unknown_ids_say_how_to_add_one() -> None:
    assert resolve_task("PandaLift-v0").id == "PandaLift-v0"
    assert {"PandaLift-v0", "PandaPegInsert-v0", "PandaStack-v0"} <= set(task_ids())
    assert "CartPole-v1" in gym.registry and "CartPole-v1" not in task_ids()  # not a task robo can drive
    with pytest.raises(ValueError) as err:
        resolve_task("PandaNope-v0")
    msg = str(err.value)
    assert "unknown task id 'PandaNope-v0'" in msg and "PandaPegInsert-v0" in msg and "package.module:Id" in msg
    assert "\n" not in msg


def test_module_colon_id_imports_the_module(clean_registry, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    spec = resolve_task(f"example_tasks:{REACH}")  # Gymnasium's form; gym.spec() alone ignores the module
    assert spec.id == REACH and spec.max_episode_steps == 40
    env = make_env(f"example_tasks:{REACH}")
    obs, _ = env.reset(seed=0)
    assert obs["observation.state"].shape == (16,) and env.unwrapped.task_description == "reach the green marker"
    env.close()
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg' \(ModuleNotFoundError"):
        resolve_task("no_such_pkg:Foo-v0")
    with pytest.raises(ValueError, match="importing 'example_tasks' registered no Gymnasium id 'Other-v0'"):
        resolve_task("example_tasks:Other-v0")


def test_entry_point_plugins_are_found_and_a_broken_one_is_reported(clean_registry, monkeypatch, tmp_path) -> None:
    site = tmp_path / "site"
    install_dist_info(site, "robo_example_tasks", "[robo.tasks]\nexample_tasks = example_tasks\n")
    install_dist_info(site, "broken_tasks", "[robo.tasks]\nbroken = broken_tasks\n")
    (site / "broken_tasks.py").write_text("raise ImportError('needs a driver this machine lacks')\n")
    import shutil

    shutil.copytree(EXAMPLE / "example_tasks", site / "example_tasks")
    monkeypatch.syspath_prepend(str(site))
    assert REACH not in gym.registry
    assert resolve_task(REACH).id == REACH  # a bare id: found through the plug-in
    assert REACH in task_ids()
    broken = [p for p in registry.load_plugins() if p.name == "broken"]
    assert broken and "ImportError: needs a driver this machine lacks" in broken[0].error
    assert resolve_task("PandaLift-v0").id == "PandaLift-v0"  # the broken plug-in hides nothing else


def test_a_plugin_task_names_its_expert_and_the_expert_succeeds(clean_registry, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    env = make_env(f"example_tasks:{REACH}", controller="python")
    expert = make_expert(env, noise=0.0, seed=0)
    successes = 0
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        for _ in range(40):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        successes += info["success"]
    env.close()
    assert successes == 3


def test_missing_or_broken_expert_is_one_line() -> None:
    class NoExpert(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (1,))
        action_space = gym.spaces.Box(-1, 1, (1,))

    with pytest.raises(ValueError, match=r"no scripted expert for NoExpert: set `scripted_expert"):
        make_expert(NoExpert())
    NoExpert.scripted_expert = "robo.sim.experts:Nope"
    with pytest.raises(ValueError, match=r"NoExpert.scripted_expert='robo.sim.experts:Nope' cannot be imported"):
        make_expert(NoExpert())


def test_a_scene_elsewhere_includes_robos_pieces_by_name(tmp_path) -> None:
    (tmp_path / "box.xml").write_text('<mujoco><worldbody><body name="box" pos="0.5 0 0.02"><freejoint/>'
                                      '<geom class="object" type="box" size="0.02 0.02 0.02"/></body></worldbody>'
                                      "</mujoco>")
    (tmp_path / "scene.xml").write_text(textwrap.dedent("""\
        <mujoco>
          <include file="robo:scene_common.xml"/>
          <include file="box.xml"/>
        </mujoco>"""))
    m = load_scene(tmp_path / "scene.xml")  # robo's by name, its own next to it
    names = [m.body(i).name for i in range(m.nbody)]
    assert "link7" in names and "box" in names and m.ncam == 2 and m.opt.timestep == 0.002
    # robo:scene_common.xml from memory compiles to exactly the model of the file on disk
    disk = mujoco.MjModel.from_xml_path(str(ASSETS / "scene_common.xml"))
    vfs = mujoco.MjModel.from_xml_string('<mujoco><include file="robo:scene_common.xml"/></mujoco>', robo_assets())
    for field in ("body_pos", "body_quat", "body_mass", "geom_size", "geom_friction", "jnt_range", "cam_pos",
                  "actuator_gear", "opt.timestep", "opt.impratio"):
        obj_v, obj_d = vfs, disk
        for part in field.split("."):
            obj_v, obj_d = getattr(obj_v, part), getattr(obj_d, part)
        np.testing.assert_array_equal(obj_v, obj_d, err_msg=field)
    assert [vfs.geom(i).name for i in range(vfs.ngeom)] == [disk.geom(i).name for i in range(disk.ngeom)]
    (tmp_path / "bad.xml").write_text('<mujoco><include file="robo:nope.xml"/></mujoco>')
    with pytest.raises(ValueError, match=f"{tmp_path / 'bad.xml'}: .*nope.xml") as err:
        load_scene(tmp_path / "bad.xml")
    assert "\n" not in str(err.value)


def test_scene_xml_is_found_next_to_the_task_module_then_in_robo(tmp_path) -> None:
    from robo.sim.tasks.lift_v0 import LiftV0

    assert resolve_scene(LiftV0.scene_xml, LiftV0) == ASSETS / "lift_scene.xml"

    class Sub(LiftV0):  # inherits scene_xml: looked up from LiftV0's module
        pass

    assert resolve_scene(Sub.scene_xml, Sub) == ASSETS / "lift_scene.xml"
    sys.path.insert(0, str(EXAMPLE))
    try:
        from example_tasks.reach import ReachV0

        assert resolve_scene(ReachV0.scene_xml, ReachV0) == EXAMPLE / "example_tasks" / "reach_scene.xml"
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in [m for m in sys.modules if m.startswith("example_tasks")]:
            del sys.modules[name]
    with pytest.raises(ValueError, match=r"scene_xml='nope.xml': no such file in .* nor in "):
        resolve_scene("nope.xml", Sub)


def test_a_scene_with_another_timestep_is_refused(tmp_path) -> None:
    from robo.sim.tasks.lift_v0 import LiftV0

    (tmp_path / "fast.xml").write_text('<mujoco><include file="robo:panda.xml"/><option timestep="0.001"/>'
                                       '<worldbody><body name="cube"><freejoint/><geom type="box" size=".02 .02 .02"/>'
                                       "</body></worldbody></mujoco>")

    class Fast(LiftV0):
        scene_xml = str(tmp_path / "fast.xml")

    with pytest.raises(ValueError, match=r"fast.xml: timestep 0.001 s, .* need 0.002 s: include robo:physics.xml"):
        Fast()
