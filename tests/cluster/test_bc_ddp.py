"""`robo train bc --devices 2` on CPU (two gloo ranks launched by robo): the loss curve of one process
on the same data, within a stated tolerance, and the same checkpoint format."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from robo.policies import load_policy

pytestmark = pytest.mark.timeout(400)
STEPS = 120
# the lift fixture's BC recipe, fewer steps; loss logged as the mean of every 20 steps
ARGS = [f"steps={STEPS}", "batch_size=64", "torch_threads=1", "log_every=20", "checkpoint_every=1000000",
        "policy.backbone=mlp", "policy.mlp_dims=[256,256,256]"]
#: every logged loss of the 2 ranks within 5% of one process's. Both draw the same global batches from the
#: same initial weights and differ only in the flow noise and time samples (each rank draws its own);
#: measured on this recipe: at most 1.6% (160 steps, 20-step means; 1.2% with 300 steps, 50-step means).
TOL = 0.05


def _curve(run) -> dict[int, float]:
    with open(run / "scalars.csv") as f:
        return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f) if r["tag"] == "losses/bc"}


def test_two_cpu_ranks_give_the_single_process_loss_curve(lift_bc, tmp_path):
    root, _ = lift_bc
    cmd = [sys.executable, "-m", "robo.cli", "train", "bc", "--data", str(root / "demos"), *ARGS]
    single = subprocess.Popen([*cmd, "--out", str(tmp_path / "one")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    ddp = subprocess.run([*cmd, "--out", str(tmp_path / "two"), "--devices", "2"], capture_output=True, text=True,
                         timeout=360)
    out, err = single.communicate(timeout=360)
    assert single.returncode == 0, err[-2000:]
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "2 ranks (gloo)" in ddp.stdout and "checkpoint:" in ddp.stdout
    one, two = _curve(tmp_path / "one"), _curve(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) >= 6
    steps = sorted(one)
    rel = np.array([abs(two[s] - one[s]) / one[s] for s in steps])
    print("\nstep  1 process  2 ranks  rel diff\n" + "\n".join(
        f"{s:>4}  {one[s]:9.4f}  {two[s]:7.4f}  {r:8.1%}" for s, r in zip(steps, rel)))
    assert one[steps[-1]] < 0.75 * one[steps[0]] and two[steps[-1]] < 0.75 * two[steps[0]]  # both learn
    assert rel.max() <= TOL, rel
    # the same checkpoint as one process: files, weights' names and shapes; it loads and acts
    a, b = load_policy(tmp_path / "one" / "checkpoint"), load_policy(tmp_path / "two" / "checkpoint")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
    assert sorted(p.name for p in (tmp_path / "one" / "checkpoint").iterdir()) == \
        sorted(p.name for p in (tmp_path / "two" / "checkpoint").iterdir())
    assert not (tmp_path / "two" / "rank1").exists()
