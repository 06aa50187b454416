"""scripts/compare_runs.py on hostile inputs (issue 25): a run named twice, an existing --output, NaN and corrupt
results.json files."""

import json
import math

import pytest

from open_r1.evaluation.common import BenchmarkResult
from open_r1.evaluation.compare import collect_results
from scripts.compare_runs import main as compare_main


def _save(folder, benchmark="pope", headline=86.0):
    BenchmarkResult(benchmark, "m", "f1", headline, 10, {}).save(folder)
    return folder


def test_a_run_name_given_twice_is_refused_not_dropped(tmp_path, capsys):
    a, b = _save(tmp_path / "a"), _save(tmp_path / "b", headline=87.0)
    with pytest.raises(SystemExit):
        compare_main(["--run", f"x={a}", "--run", f"x={b}"])
    assert "the name 'x' is given twice" in capsys.readouterr().err


def test_output_does_not_replace_a_file_unless_asked(tmp_path, capsys):
    run = _save(tmp_path / "a")
    output = tmp_path / "notes.md"
    output.write_text("my notes\n")
    with pytest.raises(SystemExit):
        compare_main(["--run", f"a={run}", "--output", str(output)])
    assert "--output" in capsys.readouterr().err and output.read_text() == "my notes\n"
    compare_main(["--run", f"a={run}", "--output", str(output), "--overwrite"])
    assert "| POPE | F1 % | 86.00 |" in output.read_text()


def test_a_nan_headline_is_named_not_tabled(tmp_path):
    _save(tmp_path / "a", headline=math.nan)
    with pytest.raises(ValueError, match=r"results\.json: headline: nan is not a finite number; fix:"):
        collect_results(tmp_path / "a")


def test_a_corrupt_results_json_is_named(tmp_path):
    folder = _save(tmp_path / "a")
    (folder / "results.json").write_text('{"benchmark": "pope", "headl')
    with pytest.raises(ValueError, match=r"a/results\.json: not valid JSON .*fix:"):
        collect_results(folder)
    with pytest.raises(ValueError, match=r"a/results\.json: not valid JSON"):
        _save(folder)  # a driver writing into that folder names it too
    (folder / "results.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a JSON object"):
        collect_results(folder)
