"""Conformance tests every driver inherits (pytest). A driver's test file subclasses one:

    class TestMyCamera(CameraContract):
        def make_resource(self):
            return MyCamera(MyCameraConfig(...), name="cam")

`make_resource` returns an unconnected resource; `start_source` / `stop_source` (optional) start
whatever feeds it (a software device, a sim). Leases go to a per-test runtime dir.
"""

from __future__ import annotations

import numpy as np
import pytest

from robo.hal import lease as _lease
from robo.hal.camera import Camera
from robo.hal.registry import get_driver
from robo.hal.resource import Arm, Health, Resource
from robo.spec import ACTION, STATE, Spec


class ResourceContract:
    """What every Resource guarantees."""

    @pytest.fixture(autouse=True)
    def _isolated_leases(self, tmp_path, monkeypatch):
        monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "runtime"))

    def make_resource(self) -> Resource:
        raise NotImplementedError

    def start_source(self, resource: Resource) -> None:
        """Start feeding the connected resource (default: nothing to do)."""

    def stop_source(self, resource: Resource) -> None:
        """Stop feeding it (default: nothing to do)."""

    @pytest.fixture
    def resource(self):
        res = self.make_resource()
        yield res
        try:
            self.stop_source(res)
        finally:
            res.close()
            res.release_lease()

    def test_registered_under_its_type_name(self, resource):
        assert resource.type_name, "decorate the class with @register('<name>')"
        assert get_driver(resource.type_name) is type(resource)

    def test_describes_itself_before_connecting(self, resource):
        md = resource.metadata()
        assert md["type"] == resource.type_name and md["kind"] == resource.kind and md["name"] == resource.name
        assert isinstance(resource.spec(), Spec) and resource.spec().features
        h = resource.health()
        assert isinstance(h, Health) and h.status in ("offline", "down", "unknown")
        assert isinstance(resource.lease_key, str) and resource.lease_key

    def test_connect_and_close_are_idempotent(self, resource):
        resource.connect()
        resource.connect()
        assert resource.is_connected
        self.start_source(resource)
        assert resource.health().status in ("ok", "degraded")
        self.stop_source(resource)
        resource.close()
        resource.close()
        assert not resource.is_connected

    def test_default_lease_mode(self, resource):
        held = resource.lease()
        expected = "shared" if resource.kind in ("camera", "sensor") else "exclusive"
        assert held.mode == expected and held.held
        assert [h.pid for h in _lease.holders(resource.lease_key)] == [held.holder.pid]
        resource.release_lease()
        assert _lease.holders(resource.lease_key) == []


class CameraContract(ResourceContract):
    """Cameras: frames carry seq and both timestamps and match the spec."""

    n_frames = 3

    def test_frames_have_seq_timestamps_and_spec_shape(self, resource):
        assert isinstance(resource, Camera)
        resource.connect()
        self.start_source(resource)
        frames = [resource.read(timeout=5.0) for _ in range(self.n_frames)]
        key = f"observation.images.{resource.name}"
        shape = resource.spec()[key].shape
        for prev, f in zip(frames, frames[1:]):
            assert f.seq > prev.seq
            assert f.t_capture >= prev.t_capture
        for f in frames:
            assert f.camera == resource.name
            assert f.color.shape == shape and f.color.dtype == np.uint8
            assert f.t_receive >= f.t_capture
        assert resource.stats()["captured"] >= self.n_frames


class ArmContract(ResourceContract):
    """Arms: commands need the exclusive lease; send_action returns what was sent within bounds."""

    def test_commands_require_the_exclusive_lease(self, resource):
        assert isinstance(resource, Arm)
        resource.connect()
        spec = resource.spec()
        act = np.zeros(spec[ACTION].shape, np.float32)
        with pytest.raises(_lease.LeaseError, match="no exclusive lease"):
            resource.send_action(act)
        with pytest.raises(ValueError, match="exclusively"):
            resource.lease("shared")
        resource.lease()
        obs, t = resource.get_obs()
        assert obs[STATE].shape == spec[STATE].shape and np.all(np.isfinite(obs[STATE]))
        assert isinstance(t, float)
        big = np.full(spec[ACTION].shape, 1e3, np.float32)
        sent = resource.send_action(big)
        lo, hi = np.array(spec[ACTION].low), np.array(spec[ACTION].high)
        assert sent.shape == act.shape
        assert np.all(sent >= lo - 1e-6) and np.all(sent <= hi + 1e-6)


class HumanoidContract(ArmContract):
    """Humanoids: kind "humanoid", every group named, groups disjoint, controlled groups measured."""

    def test_joint_groups_and_metadata(self, resource):
        from robo.hal.humanoid import GROUP_NAMES, Humanoid

        assert isinstance(resource, Humanoid) and resource.kind == "humanoid"
        groups = resource.joint_groups()
        assert set(GROUP_NAMES) <= set(groups)
        names = [j for g in groups.values() for j in g]
        assert len(names) == len(set(names)), "a joint is in two groups"
        assert resource.controlled_groups and set(resource.controlled_groups) <= set(groups)
        assert resource.metadata()["joint_groups"] == {k: list(v) for k, v in groups.items()}
        resource.connect()
        self.start_source(resource)
        for group in resource.controlled_groups:
            q = resource.group_positions(group)
            assert q.shape == (len(groups[group]),) and np.all(np.isfinite(q))
        with pytest.raises(ValueError, match="no joint group"):
            resource.group_positions("tail")
