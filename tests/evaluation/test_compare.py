"""compare_runs: collecting results.json headlines per run and the side-by-side table with the paper's numbers."""

import pytest

from open_r1.evaluation.common import BenchmarkResult
from open_r1.evaluation.compare import collect_results, comparison_table, parse_value


def _save(folder, benchmark, headline):
    BenchmarkResult(benchmark, "m", "x", headline, 10, {}).save(folder / benchmark)


def test_collect_and_compare(tmp_path):
    base, trained = tmp_path / "base", tmp_path / "trained"
    for folder, (mmmu, mme) in ((base, (36.0, 1440.0)), (trained, (40.5, 1480.25))):
        _save(folder, "mmmu", mmmu)
        _save(folder, "mme", mme)
    runs = {"base": collect_results(base), "trained": collect_results(trained)}
    assert runs["base"] == {"mme": 1440.0, "mmmu": 36.0}
    run, benchmark, value = parse_value("trained:WISE=0.38")
    runs[run][benchmark] = value
    lines = comparison_table(runs, ["Janus-Pro-1B", "PairUni-1B"]).splitlines()
    assert (
        lines[0] == "| benchmark | metric | base | trained | trained - base | paper Janus-Pro-1B | paper PairUni-1B |"
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["MMMU"] == "| MMMU | acc % | 36.00 | 40.50 | +4.50 | 36.30 | 40.40 |"
    assert rows["MME-P"] == "| MME-P | score | 1440.00 | 1480.25 | +40.25 | 1444.00 | 1483.20 |"
    assert rows["WISE"] == "| WISE | WiScore | - | 0.380 | - | - | 0.380 |"
    assert rows["MMStar"] == "| MMStar | acc % | - | - | - | - | 46.40 |"


def test_compare_input_errors(tmp_path):
    with pytest.raises(ValueError, match="no results.json"):
        collect_results(tmp_path)
    _save(tmp_path / "a", "pope", 86.0)
    _save(tmp_path / "b", "pope", 87.0)
    with pytest.raises(ValueError, match="a second pope result"):
        collect_results(tmp_path)
    with pytest.raises(ValueError, match="RUN:BENCHMARK=NUMBER"):
        parse_value("wise=0.3")
    with pytest.raises(ValueError, match="reference 'PairUni-3B' unknown"):
        comparison_table({"a": {}}, ["PairUni-3B"])
