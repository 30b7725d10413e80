"""Unitree's `unitree_hg` LowCmd_ / LowState_ messages (G1, H1-2) for CycloneDDS, and a fast codec.

The IDL types below mirror `unitree_sdk2py/idl/unitree_hg/msg/dds_` field for field (type names
`unitree_hg.msg.dds_.LowCmd_` etc.), so a real robot and unitree_sdk2 peers match them on DDS. The
generated Python (de)serialiser of cyclonedds costs milliseconds per 35-motor message, too slow for a
500 Hz state stream, so `LowCmd` / `LowState` are plain numpy records packed to and from CDR with
precompiled `struct` formats (tests/drivers/test_unitree_g1_messages.py checks them byte for byte
against cyclonedds's own serialiser).

CRC: the robot checks `crc` = CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no final
xor) over the message's C struct image (little-endian, C alignment) read as 32-bit words, all but the
last (the crc itself), each word fed most significant byte first -- what unitree_sdk2's `crc32_core`
and unitree_sdk2py's `CRC` compute. `robo.drivers.rt.unitree_crc` does the arithmetic in C++.
"""

# (no `from __future__ import annotations`: cyclonedds resolves the IDL field types at run time)
import struct
from dataclasses import dataclass, field

import cyclonedds.idl as idl
import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as types
import numpy as np

N_MOTORS = 35  # motor_cmd / motor_state length


# ----------------------------------------------------------------------------- IDL (wire types)


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorCmd_(idl.IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):
    mode: types.uint8
    q: types.float32
    dq: types.float32
    tau: types.float32
    kp: types.float32
    kd: types.float32
    reserve: types.uint32


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowCmd_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):
    mode_pr: types.uint8
    mode_machine: types.uint8
    motor_cmd: types.array[MotorCmd_, N_MOTORS]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32


@dataclass
@annotate.final
@annotate.autoid("sequential")
class IMUState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):
    quaternion: types.array[types.float32, 4]
    gyroscope: types.array[types.float32, 3]
    accelerometer: types.array[types.float32, 3]
    rpy: types.array[types.float32, 3]
    temperature: types.int16


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):
    mode: types.uint8
    q: types.float32
    dq: types.float32
    ddq: types.float32
    tau_est: types.float32
    temperature: types.array[types.int16, 2]
    vol: types.float32
    sensor: types.array[types.uint32, 2]
    motorstate: types.uint32
    reserve: types.array[types.uint32, 4]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):
    version: types.array[types.uint32, 2]
    mode_pr: types.uint8
    mode_machine: types.uint8
    tick: types.uint32
    imu_state: IMUState_
    motor_state: types.array[MotorState_, N_MOTORS]
    wireless_remote: types.array[types.uint8, 40]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32


# ----------------------------------------------------------------------------- records


@dataclass
class LowCmd:
    """A LowCmd_ as arrays (motor order 0..34)."""

    mode_pr: int = 0
    mode_machine: int = 0
    mode: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.uint8))
    # rad; on rt/arm_sdk motor 29 carries the blend weight
    q: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))
    dq: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # rad/s
    tau: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # N m
    kp: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # N m/rad
    kd: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # N m s/rad
    crc: int = 0


@dataclass
class LowState:
    """A LowState_ as arrays (motor order 0..34)."""

    mode_pr: int = 0
    mode_machine: int = 0
    tick: int = 0
    imu_quaternion: np.ndarray = field(default_factory=lambda: np.array([1, 0, 0, 0], np.float32))  # wxyz
    imu_gyroscope: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # rad/s
    q: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # rad
    dq: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # rad/s
    tau_est: np.ndarray = field(default_factory=lambda: np.zeros(N_MOTORS, np.float32))  # N m
    crc: int = 0


# ----------------------------------------------------------------------------- codec
# Byte offsets of the fields, in the CDR body (XCDR1, little endian: primitives aligned to their size from
# the start of the body) and in the C struct image the CRC covers (C alignment; unitree_sdk2py's pack
# formats '<2B2x' + 'B3x5fI' * 35 + '5I' for LowCmd_, 1004 bytes, and '<2I2B2xI' + '13fh2x' +
# 'B3x4f2hf7I' * 35 + '40B5I' for LowState_, 2092 bytes). Per-motor fields: (offset of motor 0, stride),
# or (motor 0, motor 1, stride) where CDR packs motor 0's mode byte closer than the stride.

CDR_HEADER = b"\x00\x01\x00\x00"  # XCDR1, little endian (what cyclonedds writes for @final types)
_CMD_SIZE = {"cdr": 1000, "c": 1004}
_CMD = {  # field: (offset of motor 0, stride) or offset
    "cdr": {"mode_pr": 0, "mode_machine": 1, "mode": (2, 28, 28), "q": (4, 28), "dq": (8, 28), "tau": (12, 28),
            "kp": (16, 28), "kd": (20, 28), "crc": 996},
    "c": {"mode_pr": 0, "mode_machine": 1, "mode": (4, 28), "q": (8, 28), "dq": (12, 28), "tau": (16, 28),
          "kp": (20, 28), "kd": (24, 28), "crc": 1000},
}
_STATE_SIZE = {"cdr": 2088, "c": 2092}
_STATE = {
    "cdr": {"mode_pr": 8, "mode_machine": 9, "tick": 12, "imu_quaternion": 16, "imu_gyroscope": 32,
            "mode": (70, 124, 56), "q": (72, 56), "dq": (76, 56), "tau_est": (84, 56), "crc": 2084},
    "c": {"mode_pr": 8, "mode_machine": 9, "tick": 12, "imu_quaternion": 16, "imu_gyroscope": 32,
          "mode": (72, 56), "q": (76, 56), "dq": (80, 56), "tau_est": (88, 56), "crc": 2088},
}
_DTYPES = {"mode": np.uint8}
# Every field, for turning a received CDR body into the C image its CRC covers (fields robo does not use
# included: the robot's CRC covers them too).
_CMD_CDR_ALL = struct.Struct("<2B" + "Bx5fI" + "B3x5fI" * (N_MOTORS - 1) + "4I" + "I")
_CMD_C_ALL = struct.Struct("<2B2x" + "B3x5fI" * N_MOTORS + "4I" + "I")
_STATE_CDR_ALL = struct.Struct("<2I2B2xI13fh" + "Bx4f2hf2II4I" + "B3x4f2hf2II4I" * (N_MOTORS - 1) + "40B4I" + "I")
_STATE_C_ALL = struct.Struct("<2I2B2xI13fh2x" + "B3x4f2hf2II4I" * N_MOTORS + "40B4I" + "I")


def _received_crc(body, cdr: struct.Struct, c: struct.Struct) -> int:
    from robo.drivers.rt import unitree_crc

    return unitree_crc(c.pack(*cdr.unpack_from(body)[:-1], 0))


def _motor_offsets(layout: dict, name: str) -> tuple[int, int, int]:
    """(offset of motor 0, offset of motor 1, stride) of a per-motor field."""
    spec = layout[name]
    return spec if len(spec) == 3 else (spec[0], spec[0] + spec[1], spec[1])


def _write_motors(buf, layout: dict, name: str, values: np.ndarray) -> None:
    first, second, stride = _motor_offsets(layout, name)
    dtype = np.dtype(_DTYPES.get(name, "<f4"))
    np.ndarray((1,), dtype, buffer=buf, offset=first)[:] = values[:1]
    np.ndarray((N_MOTORS - 1,), dtype, buffer=buf, offset=second, strides=(stride,))[:] = values[1:]


def _read_motors(buf, layout: dict, name: str) -> np.ndarray:
    first, second, stride = _motor_offsets(layout, name)
    dtype = np.dtype(_DTYPES.get(name, "<f4"))
    head = np.ndarray((1,), dtype, buffer=buf, offset=first)
    rest = np.ndarray((N_MOTORS - 1,), dtype, buffer=buf, offset=second, strides=(stride,))
    return np.concatenate([head, rest])


def _pack_cmd(c: LowCmd, kind: str, crc: int) -> bytearray:
    L, buf = _CMD[kind], bytearray(_CMD_SIZE[kind])
    buf[L["mode_pr"]], buf[L["mode_machine"]] = int(c.mode_pr), int(c.mode_machine)
    for name in ("mode", "q", "dq", "tau", "kp", "kd"):
        _write_motors(buf, L, name, getattr(c, name))
    struct.pack_into("<I", buf, L["crc"], int(crc))
    return buf


def _pack_state(s: LowState, kind: str, crc: int) -> bytearray:
    L, buf = _STATE[kind], bytearray(_STATE_SIZE[kind])
    buf[L["mode_pr"]], buf[L["mode_machine"]] = int(s.mode_pr), int(s.mode_machine)
    struct.pack_into("<I", buf, L["tick"], int(s.tick) & 0xFFFFFFFF)
    struct.pack_into("<4f", buf, L["imu_quaternion"], *map(float, s.imu_quaternion))
    struct.pack_into("<3f", buf, L["imu_gyroscope"], *map(float, s.imu_gyroscope))
    _write_motors(buf, L, "mode", np.ones(N_MOTORS, np.uint8))
    for name in ("q", "dq", "tau_est"):
        _write_motors(buf, L, name, getattr(s, name))
    struct.pack_into("<I", buf, L["crc"], int(crc))
    return buf


def lowcmd_crc(c: LowCmd) -> int:
    """The CRC the robot expects in `c.crc` (over everything but the crc field)."""
    from robo.drivers.rt import unitree_crc

    return unitree_crc(bytes(_pack_cmd(c, "c", 0)))


def encode_lowcmd(c: LowCmd) -> bytes:
    """CDR bytes of `c` (with its `crc` as it is), ready for a raw DDS write."""
    return CDR_HEADER + bytes(_pack_cmd(c, "cdr", c.crc))


def decode_lowcmd(data: bytes) -> tuple[LowCmd, int]:
    """(record, CRC computed over its content): compare with `record.crc` to check it."""
    body = memoryview(data)[4:]
    L = _CMD["cdr"]
    c = LowCmd(mode_pr=body[L["mode_pr"]], mode_machine=body[L["mode_machine"]],
               **{name: _read_motors(body, L, name) for name in ("mode", "q", "dq", "tau", "kp", "kd")},
               crc=struct.unpack_from("<I", body, L["crc"])[0])
    return c, _received_crc(body, _CMD_CDR_ALL, _CMD_C_ALL)


def lowstate_crc(s: LowState) -> int:
    from robo.drivers.rt import unitree_crc

    return unitree_crc(bytes(_pack_state(s, "c", 0)))


def encode_lowstate(s: LowState) -> bytes:
    return CDR_HEADER + bytes(_pack_state(s, "cdr", s.crc))


def decode_lowstate(data: bytes) -> tuple[LowState, int]:
    """(record, CRC computed over the whole message). Fields robo does not use (IMU acceleration, motor
    temperatures, ...) are not read back."""
    body = memoryview(data)[4:]
    L = _STATE["cdr"]
    s = LowState(mode_pr=body[L["mode_pr"]], mode_machine=body[L["mode_machine"]],
                 tick=struct.unpack_from("<I", body, L["tick"])[0],
                 imu_quaternion=np.array(struct.unpack_from("<4f", body, L["imu_quaternion"]), np.float32),
                 imu_gyroscope=np.array(struct.unpack_from("<3f", body, L["imu_gyroscope"]), np.float32),
                 **{name: _read_motors(body, L, name) for name in ("q", "dq", "tau_est")},
                 crc=struct.unpack_from("<I", body, L["crc"])[0])
    return s, _received_crc(body, _STATE_CDR_ALL, _STATE_C_ALL)
