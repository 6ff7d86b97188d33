"""Budget and metric parsing: units to SI base units, dimension checks, one-line errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodels.errors import CodesignError
from search.budget import METRICS, format_si, parse_budget, parse_metric, parse_quantity


@pytest.mark.parametrize(
    "text, metric, value",
    [
        ("2J", "train-energy", 2.0),
        ("500 mJ", "train-energy", 0.5),
        ("1.5kJ", "infer-energy", 1500.0),
        ("0.1 Wh", "train-energy", 360.0),
        ("2 kWh", "train-energy", 7.2e6),
        ("1 mWh", "train-energy", 3.6),
        ("1 mwh", "train-energy", 3.6),
        ("1 MWH", "train-energy", 3.6e9),
        ("2 mj", "train-energy", 2e-3),
        ("30s", "train-latency", 30.0),
        ("250 ms", "infer-latency", 0.25),
        ("5 min", "train-latency", 300.0),
        ("1.5 h", "train-latency", 5400.0),
        ("3 GFLOP", "train-flops", 3e9),
        ("2 TFLOP", "train-flops", 2e12),
        ("1 PFLOP", "train-flops", 1e15),
        ("120 MFLOP", "infer-flops", 1.2e8),
        ("1.2 GB", "train-memory", 1.2e9),
        ("64 KB", "infer-memory", 64e3),
        ("1 GiB", "train-memory", 2.0**30),
        ("512B", "infer-memory", 512.0),
        ("1e-3 J", "train-energy", 1e-3),
    ],
)
def test_budget_units_to_si(text, metric, value):
    b = parse_budget(text, metric)
    assert b.value == pytest.approx(value, rel=1e-12)
    assert b.metric.name == metric
    assert b.violation(value * 1.5) == pytest.approx(value * 0.5)
    assert b.violation(value) == 0.0


@pytest.mark.parametrize(
    "text, metric, needles",
    [
        ("2s", "train-energy", ["'2s' measures time", "train-energy", "in J"]),
        ("2J", "infer-latency", ["measures energy", "in s"]),
        ("3 GB", "train-flops", ["bytes", "FLOP"]),
        ("2", "train-energy", ["has no unit", "'2 J'"]),
        ("two joules", "train-energy", ["not a number with a unit"]),
        ("2 furlongs", "train-energy", ["unknown unit 'furlongs'"]),
        ("-1 J", "train-energy", ["positive"]),
        ("0 J", "train-energy", ["positive"]),
        ("1 mflop", "train-flops", ["unknown unit 'mflop'"]),  # milli- or mega-FLOP: the case decides
        ("1 pB", "train-memory", ["unknown unit 'pB'"]),
    ],
)
def test_bad_budgets_are_one_clear_line(text, metric, needles):
    with pytest.raises(CodesignError) as err:
        parse_budget(text, metric)
    msg = str(err.value)
    assert "\n" not in msg and "--budget" in msg
    for needle in needles:
        assert needle in msg


def test_metrics_units_and_cost_keys():
    assert len(METRICS) == 8
    m = parse_metric("train-energy")
    assert (m.unit, m.cost_key) == ("J", "train_energy_j")
    assert parse_metric("infer-memory").cost_key == "infer_memory_bytes"
    assert parse_metric("infer-latency").cost_key == "infer_latency_s"
    assert parse_metric("train-flops").unit == "FLOP"
    with pytest.raises(CodesignError, match="unknown metric 'train-power'.*train-energy"):
        parse_metric("train-power")


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), st.sampled_from(["J", "kJ", "mJ", "Wh"]))
def test_prefixes_scale_exactly(x, unit):
    scale = {"J": 1.0, "kJ": 1e3, "mJ": 1e-3, "Wh": 3600.0}[unit]
    assert parse_quantity(f"{x!r} {unit}")[0] == pytest.approx(x * scale, rel=1e-12)


def test_format_si():
    assert format_si(0.0123, "J") == "12.3 mJ"
    assert format_si(3e9, "FLOP") == "3 GFLOP"
    assert format_si(None, "J") == "n/a"
