"""Export refuses a checkpoint whose save was interrupted (no completion marker while its run writes them; issue 25)."""

import pytest

from open_r1.evaluation.export import ExportSource, resolve_source
from open_r1.run_dir import COMPLETE_MARKER


def _checkpoint(run, step, complete):
    folder = run / f"checkpoint-{step}"
    (folder / f"global_step{step}").mkdir(parents=True)
    (folder / f"global_step{step}" / "zero_pp_rank_0_mp_rank_00_model_states.pt").write_bytes(b"")
    (folder / "latest").write_text(f"global_step{step}")
    if complete:
        (folder / COMPLETE_MARKER).write_text("{}")
    return folder


def test_the_newest_complete_checkpoint_is_exported_and_an_interrupted_one_refused(tmp_path):
    run = tmp_path / "run"
    _checkpoint(run, 2, complete=True)
    interrupted = _checkpoint(run, 4, complete=False)
    assert resolve_source(run) == ExportSource("zero", run / "checkpoint-2", "global_step2")
    for source, kwargs in ((run, {"step": 4}), (interrupted, {}), (interrupted / "global_step4", {})):
        with pytest.raises(ValueError, match=rf"checkpoint-4 has no {COMPLETE_MARKER} .*fix: export an earlier"):
            resolve_source(source, **kwargs)
