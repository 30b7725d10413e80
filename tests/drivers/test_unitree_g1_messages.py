"""unitree_hg messages: our fast codec is byte for byte cyclonedds's own CDR, the CRC is the one Unitree's
SDK computes (CRC-32/MPEG-2 over the C struct image's 32-bit words), and raw DDS endpoints interoperate
with cyclonedds's typed ones."""

from __future__ import annotations

import random
import struct
import time

import numpy as np
import pytest

# cyclonedds is in the dev extra: without it these tests fail (they are not skipped)
from robo.drivers import rt
from robo.drivers.unitree_g1 import channel
from robo.drivers.unitree_g1 import messages as M
from robo.drivers.unitree_g1.messages import N_MOTORS


def crc32_mpeg2(data: bytes) -> int:
    """Reference CRC-32/MPEG-2 (bitwise; check value of b"123456789" is 0x0376E6E7)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def unitree_reference_crc(c_image: bytes) -> int:
    """Unitree's recipe: the C image as little-endian 32-bit words, all but the last, each fed MSB first."""
    words = struct.unpack(f"<{len(c_image) // 4}I", c_image)[:-1]
    return crc32_mpeg2(b"".join(w.to_bytes(4, "big") for w in words))


def random_cmd(rng) -> M.LowCmd:
    f = lambda: rng.normal(size=N_MOTORS).astype(np.float32)  # noqa: E731
    return M.LowCmd(mode_pr=1, mode_machine=5, mode=rng.integers(0, 2, N_MOTORS).astype(np.uint8), q=f(), dq=f(),
                    tau=f(), kp=f(), kd=f(), crc=int(rng.integers(0, 2**32)))


def idl_cmd(c: M.LowCmd, reserve=0) -> M.LowCmd_:
    return M.LowCmd_(c.mode_pr, c.mode_machine, [M.MotorCmd_(int(c.mode[i]), float(c.q[i]), float(c.dq[i]),
                                                             float(c.tau[i]), float(c.kp[i]), float(c.kd[i]), reserve)
                                                  for i in range(N_MOTORS)], [reserve] * 4, c.crc)


def idl_state(rng, crc=0) -> M.LowState_:
    imu = M.IMUState_([1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3], [0.0, 0.0, 9.81], [0.01, 0.02, 0.03], 41)
    motors = [M.MotorState_(1, *map(float, rng.normal(size=4)), [30 + i, 31], 24.5, [i, 2 * i], 7, [0, 1, 2, 3])
              for i in range(N_MOTORS)]
    return M.LowState_([3, 4], 0, 5, 123456, imu, motors, list(range(40)), [9, 8, 7, 6], crc)


def test_the_crc_is_unitrees():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7
    data = bytes(random.Random(0).randrange(256) for _ in range(64))
    assert rt.unitree_crc(data) == unitree_reference_crc(data)
    with pytest.raises(ValueError, match="32-bit words"):
        rt.unitree_crc(b"abc")


def test_lowcmd_codec_is_cyclonedds_cdr_and_its_crc_covers_every_field():
    rng = np.random.default_rng(0)
    c = random_cmd(rng)
    assert M.encode_lowcmd(c) == idl_cmd(c).serialize()
    decoded, crc = M.decode_lowcmd(idl_cmd(c).serialize())
    for name in ("mode", "q", "dq", "tau", "kp", "kd"):
        np.testing.assert_array_equal(getattr(decoded, name), getattr(c, name))
    assert decoded.crc == c.crc
    c_image = struct.pack("<2B2x" + "B3x5fI" * N_MOTORS + "5I", c.mode_pr, c.mode_machine,
                          *[v for i in range(N_MOTORS) for v in (int(c.mode[i]), float(c.q[i]), float(c.dq[i]),
                                                                 float(c.tau[i]), float(c.kp[i]), float(c.kd[i]), 0)],
                          0, 0, 0, 0, 0)  # unitree_sdk2py's pack format for the HG LowCmd_
    assert crc == M.lowcmd_crc(c) == unitree_reference_crc(c_image)
    # a field robo never writes (reserve) still counts: a message with it set has another CRC
    assert M.decode_lowcmd(idl_cmd(c, reserve=1).serialize())[1] != crc


def test_lowstate_codec_is_cyclonedds_cdr_and_its_crc_covers_every_field():
    rng = np.random.default_rng(1)
    full = idl_state(rng)
    s, crc = M.decode_lowstate(full.serialize())
    assert s.tick == 123456 and s.mode_machine == 5
    np.testing.assert_array_equal(s.q, np.float32([m.q for m in full.motor_state]))
    np.testing.assert_array_equal(s.tau_est, np.float32([m.tau_est for m in full.motor_state]))
    values = [*full.version, full.mode_pr, full.mode_machine, full.tick, *full.imu_state.quaternion,
              *full.imu_state.gyroscope, *full.imu_state.accelerometer, *full.imu_state.rpy, full.imu_state.temperature]
    for m in full.motor_state:
        values += [m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate, *m.reserve]
    values += [*full.wireless_remote, *full.reserve, 0]
    c_image = struct.pack("<2I2B2xI13fh2x" + "B3x4f2hf7I" * N_MOTORS + "40B5I", *values)  # unitree_sdk2py's format
    assert crc == unitree_reference_crc(c_image)  # over the temperatures, IMU, remote... too
    ours = M.LowState(mode_machine=5, tick=7, q=s.q, dq=s.dq, tau_est=s.tau_est)
    ours.crc = M.lowstate_crc(ours)
    decoded, check = M.decode_lowstate(M.encode_lowstate(ours))
    assert check == ours.crc == decoded.crc
    typed = M.LowState_.deserialize(M.encode_lowstate(ours))
    assert typed.crc == ours.crc and typed.tick == 7 and typed.motor_state[3].q == pytest.approx(float(s.q[3]))


def test_raw_endpoints_interoperate_with_typed_ones():
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    domain = random.Random().randrange(100, 200)
    dp = channel.participant(domain, "lo")
    raw_out = channel.RawWriter(dp, "rt/test_raw_to_typed", M.LowCmd_)
    typed_in = DataReader(dp, Topic(dp, "rt/test_raw_to_typed", M.LowCmd_))
    typed_out = DataWriter(dp, Topic(dp, "rt/test_typed_to_raw", M.LowCmd_))
    raw_in = channel.RawReader(dp, "rt/test_typed_to_raw", M.LowCmd_)
    c = random_cmd(np.random.default_rng(2))
    got, raws = [], []
    deadline = time.monotonic() + 10.0
    while (not got or not raws) and time.monotonic() < deadline:  # discovery takes a moment
        raw_out.write(M.encode_lowcmd(c))
        typed_out.write(idl_cmd(c))
        time.sleep(0.05)
        got += typed_in.take(N=10)
        if raw_in.wait(0.01):
            raws += raw_in.take()
    assert got and raws
    assert got[0].crc == c.crc and got[0].motor_cmd[7].kp == pytest.approx(float(c.kp[7]))
    np.testing.assert_array_equal(M.decode_lowcmd(raws[0])[0].q, c.q)
