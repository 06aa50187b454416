"""Problems open_r1/grpo.py must name before any model loads (issue 25): an output_dir that is a file, a judge
cache that is a file, `method: unirl` on a file without self rows."""

import pytest
from pairgrpo_helpers import tiny_args
from trl import ModelConfig

from open_r1 import grpo
from open_r1.configs import PairScriptArguments
from open_r1.run_dir import prepare_output_dir


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "out"
    path.write_text("a user's file\n")
    with pytest.raises(ValueError, match=r"output_dir .*out is a file, not a folder; fix:"):
        prepare_output_dir(str(path), resuming=False, overwrite=True)
    assert path.read_text() == "a user's file\n"


def test_a_judge_cache_that_is_a_file_is_refused_by_the_config(tmp_path):
    cache = tmp_path / "judge_cache"
    cache.write_text("")
    with pytest.raises(ValueError, match=r"answer_judge_cache_dir=.* is a file; fix: give a folder"):
        tiny_args(tmp_path / "out", answer_judge_model="o3", answer_judge_cache_dir=str(cache))


def test_method_unirl_without_self_rows_stops_before_the_model_loads(
    tiny_janus_path, pair_jsonl, tmp_path, monkeypatch
):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("open_r1.grpo.build_reward_funcs", no_model)
    args = tiny_args(tmp_path / "out", method="unirl", reward_funcs=["accuracy", "unirl_image"])
    with pytest.raises(ValueError, match=r"method='unirl' but .* holds no UniRL self rows.*fix:"):
        grpo.main(PairScriptArguments(pair_data_path=str(pair_jsonl)), args, ModelConfig(str(tiny_janus_path)))


def test_overwrite_with_resume_is_refused_not_ignored(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    with pytest.raises(ValueError, match=r"--overwrite_output_dir deletes the checkpoint .*fix: drop one"):
        prepare_output_dir(str(tmp_path), resuming=True, overwrite=True)
    assert (tmp_path / "checkpoint-2").is_dir()
