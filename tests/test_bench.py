"""bench/speed.py runs and prints its tables (--quick: tiny sizes; nothing about time is checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parent.parent / "bench" / "speed.py"


@pytest.mark.slow
def test_speed_benchmark_quick_mode_prints_its_tables():
    result = subprocess.run([sys.executable, str(SPEED), "--quick"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for title in ("BindsNET loop vs fast engine", "Fast engine scaling", "End to end", "Memory"):
        assert title in out, out
    floor = out.split("The input's floor, 20 neurons")[1].split("End to end")[0]
    rows = {line.split()[0]: line.split()[1:] for line in floor.splitlines() if line.startswith(("STDP", "inference"))}
    assert set(rows) == {"STDP", "inference"}, floor
    for engine, bound, share in rows.values():  # images/s of the engine and of its floor, and their ratio
        assert float(share.rstrip("%")) == pytest.approx(100 * float(engine.replace(",", "")) / float(
            bound.replace(",", "")), abs=1), floor
    comparison = out.split("BindsNET loop vs fast engine")[1].split("Fast engine scaling")[0]
    for case in ("STDP, 10 neurons, batch 1", "STDP, 20 neurons, batch 1", "STDP, 10 neurons, batch 4",
                 "inference, 10 neurons, batch 1", "inference, 10 neurons, batch 4"):
        row = next(line for line in comparison.splitlines() if line.startswith(case))
        assert re.search(r" [\d,]+\.\dx ", row), row  # images/s of both and their ratio
    scaling = out.split("Fast engine scaling")[1].split("End to end")[0]
    rows = [line.split() for line in scaling.splitlines() if line[:1].isdigit()]
    assert [(row[0], row[1]) for row in rows] == [("10", "1"), ("10", "4"), ("20", "1"), ("20", "4")]
    end_to_end = out.split("End to end")[1].split("Memory")[0]
    for case in ("STDP, 10 neurons, batch 1", "evaluate, 10 neurons", "make demo"):
        row = next(line for line in end_to_end.splitlines() if line.startswith(case))
        assert re.search(r" [\d,]+ ", row), row  # its images/s
    assert "same predictions" in end_to_end, end_to_end
    memory = out.split("Memory")[1]
    assert {line.split()[0] for line in memory.splitlines() if line.startswith(("bindsnet", "fast"))} == {
        "bindsnet", "fast"}


@pytest.mark.slow
def test_speed_benchmark_device_table_runs_both_engines_at_each_batch():
    # The GPU measurement's code path, on the CPU: one row per layer size and batch, with
    # both engines' images/s and their ratio, learning on and off.
    result = subprocess.run([sys.executable, str(SPEED), "--quick", "--device", "cpu"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "BindsNET engine on cpu vs the fast engine" in result.stdout
    assert "Fast engine scaling" not in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert [(row[0], row[1]) for row in rows] == [("10", "1"), ("10", "4"), ("20", "1"), ("20", "4")]
    for row in rows:
        train_bindsnet, train_fast, train_ratio, infer_bindsnet, infer_fast, infer_ratio = (
            float(value.replace(",", "").rstrip("x")) for value in row[2:])
        assert min(train_bindsnet, train_fast, infer_bindsnet, infer_fast) > 0, row
        assert train_ratio == pytest.approx(train_fast / train_bindsnet, rel=0.1, abs=0.1), row
        assert infer_ratio == pytest.approx(infer_fast / infer_bindsnet, rel=0.1, abs=0.1), row
