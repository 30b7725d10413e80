"""ControllerConfig: the Python dataclass mirrors the C++ struct, validates with one-line errors and
loads through robo.config."""

from __future__ import annotations

import dataclasses
import math

import mujoco
import pytest
from conftest import MJCF, URDF

from robo.config import ConfigError, load_config
from robo.drivers import rt


def _cpp_fields():
    return {n for n in dir(rt._rt._ControllerConfig) if not n.startswith("_") and n != "validate"}


def test_python_fields_and_defaults_match_cpp():
    py = rt.ControllerConfig()
    cpp = rt._rt._ControllerConfig()
    names = {f.name for f in dataclasses.fields(py)}
    assert names == _cpp_fields()
    for name in names:
        a, b = getattr(py, name), getattr(cpp, name)
        if name == "interpolation":
            assert getattr(rt.Interpolation, a) == b
        elif name == "wake_mode":
            assert getattr(rt.WakeMode, a) == b
        elif name == "output_mode":
            assert getattr(rt.OutputMode, a) == b
        elif isinstance(a, tuple):
            assert len(a) == len(b)
            assert all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b)), name
        else:
            assert a == b, name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"policy_hz": 0.0}, "policy_hz=0"),
        ({"cart_kp_pos": -1.0}, "cart_kp_pos=-1"),
        ({"joint_kp": (1.0,) * 6}, "joint_kp must have 7"),
        ({"interpolation": "cubic"}, "interpolation='cubic'"),
        ({"workspace_min": (1.0, 0.0, 0.0), "workspace_max": (0.5, 1.0, 1.0)}, "workspace_min"),
        ({"rt_priority": 120}, "rt_priority=120"),
        ({"max_pos_error": math.nan}, "max_pos_error=nan"),
    ],
)
def test_validation_is_one_line_and_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        rt.ControllerConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_load_config_with_overrides():
    cfg = load_config(rt.ControllerConfig, overrides=["cart_kp_pos=300", "interpolation=min_jerk", "policy_hz=20"])
    assert cfg.cart_kp_pos == 300.0 and cfg.interpolation == "min_jerk"
    assert cfg.to_cpp().policy_hz == 20.0
    with pytest.raises(ConfigError):
        load_config(rt.ControllerConfig, overrides=["policy_hz=-5"])


def test_config_reaches_the_controller():
    model = mujoco.MjModel.from_xml_path(str(MJCF))
    data = mujoco.MjData(model)
    ctrl = rt.MujocoController(model, data, URDF, rt.ControllerConfig(cart_kp_pos=123.0, max_joint_error=0.2))
    gains = ctrl.gains()
    assert gains["cart_kp_pos"] == 123.0 and gains["max_joint_error"] == 0.2
    assert ctrl.loop_hz == pytest.approx(1.0 / model.opt.timestep)


def test_wrong_objects_are_type_errors():
    model = mujoco.MjModel.from_xml_path(str(MJCF))
    data = mujoco.MjData(model)
    with pytest.raises(TypeError, match="MjModel"):
        rt.MujocoController(data, data, URDF)
    with pytest.raises(TypeError):
        rt.MujocoController(model, data, URDF, config={"cart_kp_pos": 1.0})
    with pytest.raises(RuntimeError, match="URDF not found"):
        rt.MujocoController(model, data, "/nonexistent.urdf")
