"""scripts/demo.sh: never clears a folder the demo did not create, and runs from any working directory."""

import os
import subprocess
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"
MARKER = ".pairuni-demo-output"


def run_check(tmp_path: Path, out: str | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DEMO_OUT"}
    if out is not None:
        env["DEMO_OUT"] = out
    return subprocess.run(
        ["bash", str(DEMO), "--check-only"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_refuses_a_user_folder_and_leaves_it_alone(tmp_path):
    user = tmp_path / "my_results"
    user.mkdir()
    (user / "paper.tex").write_text("precious")
    result = run_check(tmp_path, str(user), cwd=tmp_path)
    assert result.returncode == 2
    assert "refusing to delete" in result.stderr and str(user) in result.stderr
    assert (user / "paper.tex").read_text() == "precious"


def test_refuses_a_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("x")
    result = run_check(tmp_path, str(target), cwd=tmp_path)
    assert result.returncode == 2 and "not a folder" in result.stderr
    assert target.read_text() == "x"


def test_accepts_a_demo_folder_an_empty_one_or_a_new_one(tmp_path):
    previous = tmp_path / "demo_run"
    previous.mkdir()
    (previous / MARKER).touch()
    (previous / "train.log").write_text("old")
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (previous, empty, tmp_path / "new"):
        result = run_check(tmp_path, str(out), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (previous / "train.log").exists()  # --check-only deletes nothing


def test_runs_from_another_folder_and_resolves_paths(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_check(tmp_path, None, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"repo {DEMO.parents[1]}," in result.stdout
    assert f"output {DEMO.parents[1] / 'demo_output'}" in result.stdout
    relative = run_check(tmp_path, "out_here", cwd=elsewhere)
    assert f"output {elsewhere / 'out_here'}" in relative.stdout
