"""scripts/make_toy_unirl_rows.py refuses to replace a file or to write nothing (issue 25)."""

import pytest

from scripts.make_toy_unirl_rows import main


def test_an_existing_out_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    out.write_text("a user's rows\n")
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--num", "4"])
    assert "exists; fix:" in capsys.readouterr().err and out.read_text() == "a user's rows\n"
    assert main(["--out", str(out), "--num", "4", "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 4


@pytest.mark.parametrize("num", ["0", "-3"])
def test_num_below_one_is_refused(tmp_path, capsys, num):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "rows.jsonl"), "--num", num])
    assert f"--num {num}: nothing to write; fix:" in capsys.readouterr().err
    assert not (tmp_path / "rows.jsonl").exists()
