"""scripts/demo_unirl.sh (`make demo-unirl`) keeps `make demo`'s output guard: a user's folder is refused, untouched."""

import os
import subprocess
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo_unirl.sh"


def test_refuses_a_user_folder_before_doing_anything(tmp_path):
    user = tmp_path / "my_results"
    user.mkdir()
    (user / "paper.tex").write_text("precious")
    env = {**os.environ, "DEMO_OUT": "my_results"}  # relative to the caller's folder, as in make demo
    result = subprocess.run(["bash", str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to delete" in result.stderr and str(user) in result.stderr
    assert (user / "paper.tex").read_text() == "precious" and sorted(os.listdir(user)) == ["paper.tex"]
    assert "[demo-unirl]" not in result.stdout  # stopped before the first stage
