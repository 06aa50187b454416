"""scripts/demo.sh --check-only on the DEMO_OUT values issue 25 found passing: a symlink, `.`, an unwritable place."""

import os
import subprocess
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def run_check(out: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEMO_OUT": out}
    return subprocess.run(["bash", str(DEMO), "--check-only"], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_symlinked_demo_out_is_refused_and_kept(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = run_check(str(tmp_path / "link"), tmp_path)
    assert result.returncode == 2 and "is a symlink" in result.stderr and str(tmp_path / "real") in result.stderr
    assert (tmp_path / "link").is_symlink()


def test_demo_out_dot_is_refused_with_a_message_of_its_own(tmp_path):
    for out in (".", "./", str(tmp_path), ".."):
        result = run_check(out, tmp_path)
        assert result.returncode == 2 and "[demo] DEMO_OUT=" in result.stderr and "rm:" not in result.stderr, out


def test_an_unwritable_place_is_refused(tmp_path):
    result = run_check("/proc/pairuni_demo/out", tmp_path)  # nothing can be created under /proc, even as root
    assert result.returncode == 2 and "cannot be written" in result.stderr


def test_a_new_folder_under_a_writable_one_still_passes(tmp_path):
    result = run_check(str(tmp_path / "a" / "b"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "a").exists() and not list(tmp_path.glob(".pairuni-demo-probe*"))
