"""Config system: defaults < YAML < dotted overrides, and one-line errors naming the key."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from robo.config import ConfigError, load_config, parse_overrides, save_config


@dataclass
class Inner:
    horizon: int = 16
    lr: float = 1e-3

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"horizon={self.horizon} is out of range [1, inf]")


@dataclass
class Outer:
    name: str = "x"
    dims: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)


def test_precedence_defaults_yaml_cli(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: fromyaml\ninner:\n  horizon: 8\n")
    cfg = load_config(Outer, p, ["inner.horizon=32", "dims=[4,5,6]"])
    assert cfg.name == "fromyaml"
    assert cfg.inner.horizon == 32
    assert cfg.inner.lr == pytest.approx(1e-3)
    assert cfg.dims == (4, 5, 6)


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inner:\n  horizn: 8\n")
    with pytest.raises(ConfigError, match=r"c.yaml.*'inner.horizn'"):
        load_config(Outer, p)
    with pytest.raises(ConfigError, match="unknown config key 'inner.nope'"):
        load_config(Outer, None, ["inner.nope=1"])


def test_bad_value_names_key():
    with pytest.raises(ConfigError, match="'inner.horizon' must be an integer"):
        load_config(Outer, None, ["inner.horizon=abc"])
    with pytest.raises(ConfigError, match="horizon=0 is out of range"):
        load_config(Outer, None, ["inner.horizon=0"])


def test_malformed_yaml_and_missing_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(Outer, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_save_roundtrip(tmp_path):
    cfg = load_config(Outer, None, ["inner.lr=0.5"])
    save_config(cfg, tmp_path / "r.yaml")
    assert load_config(Outer, tmp_path / "r.yaml") == cfg


def test_parse_overrides_rejects_missing_equals():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["policy.horizon"])


FUZZ_FILES = 300
"""Random config files (garbage bytes, NUL fills, broken YAML) read by the fuzz below (a second or so)."""


def test_unreadable_config_files_give_one_line_naming_the_file(tmp_path):
    rng = np.random.default_rng(7)
    fixed = [b"\x00" * 4096, b"\xff\xfe\x00garbage", b"a: [1, 2\nb: 3\n", b"\tkey: value\n  - x\n", b"{{{{",
             b"- 1\n- 2\n"]
    pieces = [b"a:", b" [", b"]", b"\n", b"  ", b"- ", b"{", b"}", b"'", b'"', b"\x00", b"\xc3", b"&x", b"*x", b": :"]
    cases = fixed + [rng.bytes(int(rng.integers(0, 200))) for _ in range(FUZZ_FILES // 2)]
    cases += [b"".join(pieces[i] for i in rng.integers(0, len(pieces), 30)) for _ in range(FUZZ_FILES // 2)]
    n_errors = 0
    for i, data in enumerate(cases):
        path = tmp_path / f"config-{i}.yaml"
        path.write_bytes(data)
        try:
            load_config(Outer, path)
        except ConfigError as e:
            n_errors += 1
            assert str(path) in str(e) and "\n" not in str(e), (data, str(e))
    assert n_errors >= len(fixed)
