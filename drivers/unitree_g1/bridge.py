"""A robot of ours on DDS: plays the G1's side of unitree_hg over loopback (or any NIC), the way
unitree_mujoco does, for tests and dry runs of the unitree_g1 driver without a robot.

    python -m robo.drivers.unitree_g1.bridge --domain 1 --interface lo --report bridge.json

It steps the welded G1 of sim/assets/g1_welded.xml in real time (2 ms; position servos hold the legs: the
stand-in for the balance controller), publishes `rt/lowstate` at 500 Hz (CRC set) and consumes
`rt/arm_sdk` and `rt/lowcmd`, and checks every command the way the robot's side should:

* CRC: a command whose CRC does not match is refused (counted, never applied);
* mode_machine: one that does not echo ours is refused;
* blend weight (rt/arm_sdk, motor_cmd[29].q): its rise faster than --max-blend-rate (plus one message of
  slack) is counted, per second of the sender's clock (the DDS source timestamp: commands that arrive
  bunched, after a stall of this process, are not a fast ramp); the applied upper-body command is
  weight x ours + (1 - weight) x the robot's own hold;
* joint limits: targets outside the URDF limits are counted (and clamped before they are applied);
* a stale stream: with no valid command for --stale-after s the last valid one keeps being applied.

The drives' PD (kp (q - q_meas) + kd (dq - dq_meas) + tau) runs at every physics step. On SIGINT/SIGTERM
(or after --duration) it writes a JSON report: counters, message intervals, and the log of accepted
commands (time, weight, the 17 upper-body targets). `--corrupt-state-crc-after S` publishes bad-CRC
states from S seconds after the first valid command on (the driver must refuse them; counted from the
driver's first command, so that a slow start of the driver does not move the moment).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", type=int, default=1, help="DDS domain (unitree_mujoco's: 1)")
    p.add_argument("--interface", default="lo", help="NIC (default: lo)")
    p.add_argument("--mode-machine", type=int, default=5, help="machine type reported (g1_29dof: 5)")
    p.add_argument("--max-blend-rate", type=float, default=0.2, help="fastest accepted blend-weight rise (1/s)")
    p.add_argument("--stale-after", type=float, default=0.1, help="command stream considered stale after (s)")
    p.add_argument("--corrupt-state-crc-after", type=float, default=-1.0,
                   help="bad-CRC states from this long after the first valid command on (s)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this long (s); 0 = until a signal")
    p.add_argument("--report", required=True, help="JSON report written at exit")
    args = p.parse_args(argv)

    import mujoco

    from robo.drivers.unitree_g1 import channel, messages
    from robo.sim import g1

    model = mujoco.MjModel.from_xml_path(str(g1.ASSETS / "g1_welded.xml"))
    data = mujoco.MjData(model)
    motors = np.arange(len(g1.JOINTS))
    upper = np.array([g1.MOTOR_INDEX[j] for j in g1.UPPER_BODY])
    qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in g1.JOINTS])
    dofs = np.array([model.jnt_dofadr[model.joint(j).id] for j in g1.JOINTS])
    act = np.array([model.actuator(g1.actuator_name(j)).id for j in g1.UPPER_BODY])
    tau_max = np.abs(model.actuator_ctrlrange[act, 1])
    q_lo, q_hi = model.jnt_range[[model.joint(j).id for j in g1.UPPER_BODY]].T
    home = g1.solve_hands_ik(model, qadr[upper], [model.site(s).id for s in g1.TCP_FRAMES],
                             ([0.25, 0.22, 0.95], [0.25, -0.22, 0.95]))
    data.qpos[qadr[upper]] = home
    mujoco.mj_forward(model, data)
    own_q, own_kp, own_kd = home.copy(), np.asarray(g1.UPPER_KP), np.asarray(g1.UPPER_KD)  # the robot's own hold

    dp = channel.participant(args.domain, args.interface)
    state_out = channel.RawWriter(dp, "rt/lowstate", messages.LowState_)
    readers = {"rt/arm_sdk": channel.RawReader(dp, "rt/arm_sdk", messages.LowCmd_),
               "rt/lowcmd": channel.RawReader(dp, "rt/lowcmd", messages.LowCmd_)}

    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.update(now=True))

    counts = {"states_sent": 0, "commands": 0, "bad_crc": 0, "bad_mode_machine": 0, "blend_rate_violations": 0,
              "out_of_limit": 0, "stale_periods": 0, "lowcmd_messages": 0}
    log: list[list[float]] = []  # accepted commands: t, weight, 17 upper-body targets
    cmd_times: list[float] = []
    state_times: list[float] = []
    active = None  # (weight, q, dq, kp, kd, tau) of the newest valid command
    weight_prev, src_prev_cmd, t_last_valid, stale = 0.0, None, None, False
    dt = float(model.opt.timestep)
    t0 = time.monotonic()
    next_t = t0
    print("bridge ready", flush=True)
    while not stop["now"] and not (args.duration and time.monotonic() - t0 > args.duration):
        now = time.monotonic() - t0
        for topic, reader in readers.items():
            for raw, src_t in reader.take_stamped(16):
                cmd, crc = messages.decode_lowcmd(raw)
                if crc != cmd.crc:
                    counts["bad_crc"] += 1
                    continue
                if cmd.mode_machine != args.mode_machine:
                    counts["bad_mode_machine"] += 1
                    continue
                counts["commands"] += 1
                counts["lowcmd_messages"] += topic == "rt/lowcmd"
                w = float(np.clip(cmd.q[g1.BLEND_WEIGHT_MOTOR], 0.0, 1.0)) if topic == "rt/arm_sdk" else 1.0
                if src_prev_cmd is not None and w - weight_prev > args.max_blend_rate * (src_t - src_prev_cmd) + 0.02:
                    counts["blend_rate_violations"] += 1
                q = cmd.q[upper].astype(np.float64)
                if np.any(q < q_lo - 1e-6) or np.any(q > q_hi + 1e-6):
                    counts["out_of_limit"] += 1
                    q = np.clip(q, q_lo, q_hi)
                active = (w, q, cmd.dq[upper].astype(np.float64), cmd.kp[upper].astype(np.float64),
                          cmd.kd[upper].astype(np.float64), cmd.tau[upper].astype(np.float64))
                weight_prev, src_prev_cmd, t_last_valid = w, src_t, now
                cmd_times.append(now)
                log.append([now, w, *q.tolist()])
        if t_last_valid is not None and now - t_last_valid > args.stale_after:
            counts["stale_periods"] += not stale
            stale = True
        else:
            stale = False
        # the drives: the blend of our command and the robot's own hold, PD at every physics step
        if active is None:
            w, q_t, dq_t, kp, kd, ff = 0.0, own_q, np.zeros(17), own_kp, own_kd, np.zeros(17)
        else:
            w, q_t, dq_t, kp, kd, ff = active
        q_cmd = w * q_t + (1 - w) * own_q
        kp_b, kd_b = w * kp + (1 - w) * own_kp, w * kd + (1 - w) * own_kd
        bias = data.qfrc_bias[dofs[upper]]  # (of the previous step) the robot's own hold compensates gravity too
        tau = (kp_b * (q_cmd - data.qpos[qadr[upper]]) + kd_b * (w * dq_t - data.qvel[dofs[upper]])
               + w * ff + (1 - w) * bias)
        data.ctrl[act] = np.clip(tau, -tau_max, tau_max)
        mujoco.mj_step(model, data)
        # the state
        s = messages.LowState(mode_machine=args.mode_machine, tick=int(now * 1000))
        s.q[motors] = data.qpos[qadr]
        s.dq[motors] = data.qvel[dofs]
        s.tau_est[upper] = data.ctrl[act]
        s.crc = messages.lowstate_crc(s)
        if args.corrupt_state_crc_after >= 0 and log and now >= log[0][0] + args.corrupt_state_crc_after:
            s.crc ^= 0xDEADBEEF
        state_out.write(messages.encode_lowstate(s))
        counts["states_sent"] += 1
        state_times.append(now)
        next_t += dt
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = time.monotonic()  # late: skip, never burst

    def median_interval(ts: list[float]) -> float | None:
        return float(np.median(np.diff(ts))) if len(ts) > 2 else None

    report = {**counts, "duration_s": time.monotonic() - t0, "lowcmd_interval_s": median_interval(cmd_times),
              "lowstate_interval_s": median_interval(state_times), "q_min": q_lo.tolist(), "q_max": q_hi.tolist(),
              "home": home.tolist(), "log": log}
    Path(args.report).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
