"""`unitree_g1`: a real Unitree G1 behind the same `Humanoid` interface as `sim_g1`.

The same C++ controller as in simulation (robo.drivers.rt, `ExternalController`: PD-drive output,
bimanual differential IK, the position / speed / torque limits, the watchdog and the state timeout) runs
its own 500 Hz thread; this driver does its I/O over the robot's DDS messages (`unitree_hg`, CycloneDDS):

    rt/lowstate  (robot -> us, 500 Hz)  CRC checked; a bad CRC or machine type is dropped and counted;
                                        the upper body's q, dq, tau go into the controller
    rt/arm_sdk   (us -> robot, 50 Hz)   the controller's newest PD command for the waist and arms
                                        (mode 1, q, dq, kp, kd, tau = gravity feed-forward), the echoed
                                        mode_machine, the blend weight in motor_cmd[29].q (ramped 0 -> 1
                                        after connect and 1 -> 0 at close, at blend_rate_per_s), CRC
    rt/lowcmd                           instead of rt/arm_sdk only with raw_lowcmd: true (legs then held
                                        by the drives' PD at their pose at connect)

The robot's own balance controller keeps it standing on the rt/arm_sdk path (unitree_sdk2_python #108:
low-level commands do not mix with it). Python is not in the control loop: the loop is C++; the threads
here only move the newest state in and the newest command out. If rt/lowstate stops (or only arrives
with bad CRCs), the controller holds the last measured pose (its state timeout) and that hold is what is
published; a stale stream of actions ends in the watchdog's hold the same way. Tested against our robot
bridge on DDS over loopback (bridge.py, tests/drivers/test_unitree_g1.py); not on a robot.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import numpy as np

from robo.drivers.unitree_g1.config import UnitreeG1Config
from robo.hal.humanoid import Humanoid
from robo.hal.registry import register
from robo.hal.resource import DeviceInfo, Health
from robo.spec import STATE, Spec


def _g1():
    from robo.sim import g1

    return g1


@register("unitree_g1")
class UnitreeG1(Humanoid):
    """Unitree G1 29-DoF over DDS: waist and arms commanded, the robot balancing itself."""

    config_class: ClassVar[type] = UnitreeG1Config
    config: UnitreeG1Config
    controlled_groups: ClassVar[tuple[str, ...]] = ("waist", "left_arm", "right_arm")

    def __init__(self, config: UnitreeG1Config | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self.ctrl: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._latest: Any = None  # newest valid LowState record
        self._t_latest = 0.0
        self.weight = 0.0  # rt/arm_sdk blend weight last sent
        self._weight_goal = 0.0
        self.counts = {"states": 0, "bad_crc": 0, "bad_machine": 0, "commands": 0, "rejected": 0}
        self.n_actions = 0

    @property
    def lease_key(self) -> str:
        return f"unitree_g1:{self.config.network_interface or 'default'}/domain{self.config.domain_id}"

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        """NICs with an address on the G1's network (192.168.123.x); no DDS traffic is sent."""
        import socket

        out = []
        try:
            names = [n for _, n in socket.if_nameindex()]
        except OSError:
            return out
        for nic in names:
            addr = _ipv4(nic)
            if addr and addr.startswith("192.168.123."):
                out.append(DeviceInfo("unitree_g1", f"{nic}/domain0", "Unitree G1 network",
                                      {"network_interface": nic, "address": addr, "robot": "192.168.123.164"}))
        return out

    # ---------------------------------------------------------------- connection
    def _connect(self) -> None:
        from robo.drivers import rt
        from robo.drivers.unitree_g1 import channel, messages

        g1, c = _g1(), self.config
        self._upper = np.array([g1.MOTOR_INDEX[j] for j in g1.UPPER_BODY])
        self._legs = np.array([g1.MOTOR_INDEX[j] for j in g1.GROUPS["legs"]])
        dp = channel.participant(c.domain_id, c.network_interface)
        self._reader = channel.RawReader(dp, "rt/lowstate", messages.LowState_)
        self._topic = "rt/lowcmd" if c.raw_lowcmd else "rt/arm_sdk"
        self._writer = channel.RawWriter(dp, self._topic, messages.LowCmd_)
        first = self._first_state(messages)
        cfg = g1.upper_body_config(c.control_hz, velocity_limit_scale=c.velocity_limit_scale,
                                   state_timeout_s=c.state_timeout_s)
        self.ctrl = rt.ExternalController(g1.URDF_PATH, g1.upper_body_description(), cfg, rate_hz=c.loop_hz,
                                          stale_after_s=max(4.0 / c.loop_hz, 0.02))
        self._push(first)
        self.ctrl.reset()
        self._leg_hold = first.q[self._legs].astype(np.float64)
        self.hands = g1.HandTargets()
        st = self.ctrl.state()
        self.hands.reset(st["ee_pos"])
        self._hand_quat = np.asarray(st["ee_quat_wxyz"])
        self._target_q = first.q[self._upper].astype(np.float64)
        self._stop.clear()
        self._weight_goal = 1.0
        reader = threading.Thread(target=self._read_loop, args=(messages,), name=f"{self.name}-lowstate", daemon=True)
        publisher = threading.Thread(target=self._publish_loop, args=(messages,), name=f"{self.name}-lowcmd",
                                     daemon=True)
        self._threads = [reader, publisher]
        reader.start()  # states flow before the loop starts, so its first ticks see fresh ones
        self.ctrl.start(realtime=True)
        publisher.start()

    def _first_state(self, messages) -> Any:
        c = self.config
        deadline = time.monotonic() + c.connect_timeout_s
        while time.monotonic() < deadline:
            if not self._reader.wait(0.1):
                continue
            for data in self._reader.take():
                s = self._accept(messages, data)
                if s is not None and s.mode_machine != c.mode_machine:
                    raise RuntimeError(f"unitree_g1 '{self.name}': the robot reports mode_machine={s.mode_machine}, "
                                       f"the config expects {c.mode_machine} (g1_29dof = 5); refusing to command it")
                if s is not None:
                    return s
        raise RuntimeError(f"unitree_g1 '{self.name}': no valid rt/lowstate on DDS domain {c.domain_id} "
                           f"(interface {c.network_interface or 'default'}) within {c.connect_timeout_s} s "
                           f"(wrong NIC or domain? bad CRCs: {self.counts['bad_crc']})")

    def _accept(self, messages, data: bytes) -> Any:
        """Decode a LowState_; None (counted) when its CRC or machine type is wrong."""
        s, crc = messages.decode_lowstate(data)
        if crc != s.crc:
            self.counts["bad_crc"] += 1
            return None
        if self._latest is not None and s.mode_machine != self._latest.mode_machine:
            self.counts["bad_machine"] += 1
            return None
        with self._lock:
            self._latest, self._t_latest = s, time.monotonic()
        self.counts["states"] += 1
        return s

    def _push(self, s) -> None:
        u = self._upper
        self.ctrl.push_state(s.q[u].astype(np.float64).tolist(), s.dq[u].astype(np.float64).tolist(),
                             s.tau_est[u].astype(np.float64).tolist())

    def _read_loop(self, messages) -> None:
        while not self._stop.is_set():
            if not self._reader.wait(0.05):
                continue
            for data in self._reader.take():
                s = self._accept(messages, data)
                if s is not None and self.ctrl is not None:
                    self._push(s)

    def _publish_loop(self, messages) -> None:
        c = self.config
        period = 1.0 / c.publish_hz
        next_t = time.monotonic()
        t_sent = None  # when the previous command went out
        g1 = _g1()
        while True:
            cmd = self.ctrl.take_command()
            latest = self._latest
            if cmd is not None and latest is not None:
                out = messages.LowCmd(mode_pr=0, mode_machine=latest.mode_machine)
                u = self._upper
                out.mode[u] = 1
                out.q[u], out.dq[u], out.kp[u], out.kd[u], out.tau[u] = (
                    cmd["q"], cmd["dq"], cmd["kp"], cmd["kd"], cmd["tau_ff"])
                if c.raw_lowcmd:
                    out.mode[self._legs] = 1
                    legs = self._legs
                    out.q[legs], out.kp[legs], out.kd[legs] = self._leg_hold, c.leg_hold_kp, c.leg_hold_kd
                else:
                    # the weight moves at most blend_rate_per_s per second actually elapsed (a late tick
                    # followed by a short one must not add two full steps)
                    now = time.monotonic()
                    step = c.blend_rate_per_s * (period if t_sent is None else min(period, now - t_sent))
                    self.weight = float(np.clip(self._weight_goal, self.weight - step, self.weight + step))
                    out.q[g1.BLEND_WEIGHT_MOTOR] = self.weight
                out.crc = messages.lowcmd_crc(out)
                self._writer.write(messages.encode_lowcmd(out))
                t_sent = time.monotonic()
                self.counts["commands"] += 1
            if self._stop.is_set() and (c.raw_lowcmd or self.weight <= 0.0 or latest is None):
                return
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()  # late: never burst to catch up

    def _close(self) -> None:
        """Ramp the blend weight back to 0 (rt/arm_sdk: the robot takes its arms back), then stop."""
        self._weight_goal = 0.0
        self._stop.set()
        ramp_s = self.weight / self.config.blend_rate_per_s + 1.0
        for t in self._threads:
            t.join(timeout=ramp_s + 1.0)
        self._threads = []
        if self.ctrl is not None:
            self.ctrl.stop()
        self.ctrl = None

    # ---------------------------------------------------------------- state
    def joint_groups(self) -> dict[str, tuple[str, ...]]:
        return dict(_g1().GROUPS)

    def joint_positions(self) -> dict[str, float]:
        latest = self._require_state()
        return {j: float(latest.q[i]) for j, i in _g1().MOTOR_INDEX.items()}

    def _require_state(self) -> Any:
        if not self._connected or self._latest is None:
            raise RuntimeError(f"unitree_g1 '{self.name}' is not connected")
        return self._latest

    def get_observation(self) -> dict[str, np.ndarray]:
        latest = self._require_state()
        palms = np.asarray(self.ctrl.state()["ee_pos"]).ravel()  # pelvis frame, from the measured joints
        return {STATE: np.concatenate([latest.q[self._upper], palms]).astype(np.float32)}

    # ---------------------------------------------------------------- commands
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _g1().action_bounds(self.config.control_mode, self.config.max_delta_pos_m)

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Set the controller's targets (returns at once; the 500 Hz loop and the 50 Hz publisher carry
        them out). Returns what was sent after limits: hand deltas, or joint targets; a target the
        controller refuses (outside its limits or workspace) keeps the previous one."""
        self.require_lease("command")
        self._require_state()
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        lo, hi = self.action_bounds()
        if a.shape != lo.shape:
            raise ValueError(f"unitree_g1 '{self.name}': action has shape {a.shape}, expected {lo.shape}")
        if self.config.control_mode == "ee_delta":
            a = np.clip(np.where(np.isfinite(a), a, 0.0), lo, hi)
            before = self.hands.pos.copy()
            self.hands.apply(a[:6], a[6])
            if not self.ctrl.set_ee_targets(self.hands.sent(), self._hand_quat, 0.0):
                self.hands.pos = before
                self.counts["rejected"] += 1
            sent = np.append((self.hands.pos - before).ravel(), a[6])
        else:
            q = _g1().step_joint_target(a, self._target_q, self.config.max_delta_joint_rad)
            if self.ctrl.set_joint_target(list(q), 0.0):  # out-of-limit targets are refused here, whole
                self._target_q = q
            else:
                self.counts["rejected"] += 1
            sent = self._target_q.copy()
        self.n_actions += 1
        return sent.astype(np.float32)

    def rearm(self) -> None:
        """Leave the controller's hold (after a watchdog trip or a state timeout)."""
        self.ctrl.rearm()
        st = self.ctrl.state()
        self.hands.reset(st["ee_pos"])
        self._target_q = np.asarray(st["q"], dtype=np.float64)

    # ---------------------------------------------------------------- description
    def spec(self) -> Spec:
        return _g1().humanoid_spec(self.config.control_mode, self.config.max_delta_pos_m)

    def health(self) -> Health:
        if not self._connected:
            return Health("offline", f"not connected (DDS domain {self.config.domain_id}, "
                                     f"interface {self.config.network_interface or 'default'})")
        age = time.monotonic() - self._t_latest
        m = {**self.counts, "state_age_s": round(age, 4), "blend_weight": round(self.weight, 3),
             "held": bool(self.ctrl.held), "topic": self._topic}
        if age > self.config.state_timeout_s:
            return Health("down", f"no valid rt/lowstate for {age:.2f} s (bad CRCs: {self.counts['bad_crc']})", m)
        if self.ctrl.held:
            return Health("degraded", "controller holds (watchdog or state timeout); call rearm()", m)
        if self.counts["bad_crc"] or self.counts["bad_machine"]:
            return Health("degraded", f"dropped {self.counts['bad_crc']} bad-CRC states", m)
        return Health("ok", f"{self._topic} at {self.config.publish_hz:g} Hz, blend weight {self.weight:.2f}", m)

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(model="Unitree G1 29-DoF", transport="CycloneDDS unitree_hg",
                   topic="rt/lowcmd" if self.config.raw_lowcmd else "rt/arm_sdk")
        return out


def _ipv4(nic: str) -> str | None:
    """The IPv4 address of a NIC (Linux), or None."""
    import fcntl
    import socket
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", nic[:15].encode()))  # SIOCGIFADDR
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None
