"""The UniRL SFT entry point open_r1/sft.py and its data: grpo.py's data options, truncation, resume (issue 25)."""

import json

import pytest
from trl import ModelConfig

from data_tools.make_unirl_prompts import build_rows
from open_r1 import sft
from open_r1.configs import PairScriptArguments
from open_r1.trainer.unirl_sft import UniRLSFTConfig, UniRLSFTTrainer, load_self_rows

PAIR = {
    "generate_ann": {"image_path": "a.png", "prompt": "a red cat"},
    "understand_ann": {"image_path": "a.png", "question": "What colour is the cat?", "answer": "red"},
}


def _rows(n=4):
    return [r.to_dict() for r in build_rows(max(n, 6), seed=0)[:n]]


def _write(tmp_path, lines, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_a_pairug_pair_is_named_as_a_pair_not_as_a_missing_prompt(tmp_path):
    path = _write(tmp_path, [*_rows(2), PAIR])
    with pytest.raises(
        ValueError, match=r"rows\.jsonl:3: generate_ann: a PairUG pair.*fix: .*make_unirl_prompts"
    ) as e:
        load_self_rows(str(path))
    assert "prompt: missing" not in str(e.value)


def test_skip_invalid_drops_and_counts_bad_lines(tmp_path, caplog):
    path = _write(tmp_path, [_rows(1)[0], "{not json", {"prompt": "a cat"}, PAIR, *_rows(3)[1:]])
    with pytest.raises(ValueError, match=r"3 invalid line\(s\).*--skip_invalid"):
        load_self_rows(str(path))
    with caplog.at_level("WARNING"):
        dataset = load_self_rows(str(path), skip_invalid=True)
    assert len(dataset) == 3 and dataset["prompt"] == [r["prompt"] for r in _rows(3)]
    assert "skipped 3 invalid line(s)" in caplog.text
    assert "rows.jsonl:3: question: missing" in caplog.text  # a self row without its question, named as such


def test_pair_types_self_keeps_the_self_rows_of_a_mixed_file_and_others_are_refused(tmp_path):
    path = _write(tmp_path, [PAIR, *_rows(2)])
    assert len(load_self_rows(str(path), pair_types=["self"])) == 2
    with pytest.raises(ValueError, match=r"pair_types: \['aligned'\].*fix: pass --pair_types self"):
        load_self_rows(str(path), pair_types=["aligned"])


def test_image_root_is_refused_not_ignored(tmp_path):
    args = PairScriptArguments(pair_data_path=str(_write(tmp_path, _rows(2))), image_root=str(tmp_path))
    with pytest.raises(ValueError, match=r"image_root=.*fix: drop --image_root"):
        sft.check_script_args(args)


def test_long_prompts_and_questions_keep_their_last_tokens(tiny_janus_path, tmp_path):
    from janus.backbone import JanusBackbone

    backbone, model = JanusBackbone.load(tiny_janus_path)
    args = UniRLSFTConfig(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, max_prompt_length=4)
    rows = load_self_rows(str(_write(tmp_path, _rows(2))))
    trainer = UniRLSFTTrainer(model=model, backbone=backbone, args=args, train_dataset=rows)
    seen = {}

    def sample_images(unwrapped, prompts, options):
        seen["prompts"] = prompts
        raise StopIteration  # the texts are all this test needs

    trainer.backbone.sample_images = sample_images
    with pytest.raises(StopIteration):
        trainer.compute_loss(trainer.model, [rows[0], rows[1]])
    tokenizer = backbone.tokenizer
    for prompt, row in zip(seen["prompts"], [rows[0], rows[1]], strict=True):
        assert (
            tokenizer(prompt, add_special_tokens=False)["input_ids"]
            == (tokenizer(row["prompt"], add_special_tokens=False)["input_ids"][-4:])
        )
    (question,) = trainer._questions([rows[0]["question"]])
    assert len(tokenizer(question, add_special_tokens=False)["input_ids"]) == 4


def _run_sft(tiny_janus_path, tmp_path, max_steps, resume):
    script_args = PairScriptArguments(pair_data_path=str(_write(tmp_path, _rows(4))))
    training_args = UniRLSFTConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=max_steps, learning_rate=1e-3,
        report_to="none", save_strategy="steps", save_steps=max_steps, use_cpu=True, seed=0, logging_steps=1,
        dataloader_num_workers=0, cfg_weight=2.0, resume_from_checkpoint=resume,
    )  # fmt: skip
    sft.main(script_args, training_args, ModelConfig(model_name_or_path=str(tiny_janus_path), dtype="float32"))


def _metric_steps(out):
    return [json.loads(line).get("step") for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # two short trainings, ~20 s
def test_resuming_a_finished_run_trains_nothing_when_max_steps_ends_mid_epoch(tiny_janus_path, tmp_path, caplog):
    # 4 rows, 2 per step: 2 steps an epoch, so max_steps=3 ends in the middle of the second epoch.
    _run_sft(tiny_janus_path, tmp_path, max_steps=3, resume=None)
    out = tmp_path / "out"
    final = (out / "model.safetensors").stat().st_mtime_ns
    steps = _metric_steps(out)
    with caplog.at_level("WARNING"):
        _run_sft(tiny_janus_path, tmp_path, max_steps=3, resume="true")
    assert "the run is finished" in caplog.text
    assert _metric_steps(out) == steps and max(s for s in steps if s is not None) == 3
    assert (out / "model.safetensors").stat().st_mtime_ns == final  # the final model is not rewritten
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
