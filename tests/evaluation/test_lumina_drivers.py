"""The understanding drivers on a tiny random Lumina-DiMOO (greedy answers through the backbone interface), and the
one-token mode of Lumina-DiMOO's VLMEvalKit wrapper (`--one_token`: one answer token, the benchmark's own scorer)."""

import base64
import json

import pandas as pd
import pytest

from backbones import AnswerSampling
from janus.backbone import JanusBackbone
from lumina_dimoo.backbone import LuminaDiMOOBackbone
from lumina_dimoo.tiny import build_tiny_checkpoint
from lumina_dimoo.tokens import ONE_TOKEN_ANSWER_PADS, DimooTokens
from open_r1.evaluation import mmmu, mmstar, pope
from open_r1.evaluation.common import AnswerSettings

TOKENS = DimooTokens()


@pytest.fixture(scope="module")
def tiny_dimoo_path(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-dimoo"), seed=0)


@pytest.fixture
def mmstar_tsv(tmp_path, png):
    question = "What is shown?\nOptions: A: a cat, B: a dog, C: a bird, D: a fish"
    rows = [
        {"index": i, "question": question, "answer": answer, "category": "coarse", "l2_category": "l2",
         "image": base64.b64encode(png(color, size)).decode()}
        for i, (answer, color, size) in enumerate([("A", "red", (40, 30)), ("B", "blue", (64, 64)),
                                                   ("C", "green", (20, 36))])
    ]  # fmt: skip
    path = tmp_path / "MMStar.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def pope_json(tmp_path, png):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco/COCO_val2014_000000000001.jpg").write_bytes(png("white", (48, 32)))
    lines = [
        {"question_id": q, "image": "COCO_val2014_000000000001.jpg", "text": text, "label": label}
        for q, text, label in ((1, "Is there a dog in the image?", "yes"), (2, "Is there a cup?", "no"))
    ]
    path = tmp_path / "coco_pope_random.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def answer_calls(monkeypatch):
    """`answer_calls(BackboneClass)` -> a list of (options, rollout, decoded texts) per `sample_answers` call of that
    class."""

    def install(cls) -> list:
        calls = []
        original = cls.sample_answers

        def wrapped(self, model, questions, images, options, *args, **kwargs):
            rollout = original(self, model, questions, images, options, *args, **kwargs)
            calls.append((options, rollout, self.decode_answers(rollout.completion_ids)))
            return rollout

        monkeypatch.setattr(cls, "sample_answers", wrapped)
        return calls

    return install


def driver_args(benchmark: str, data: dict, model_path) -> tuple:
    """(module, CLI args without --out_dir) of one benchmark on its fixture data."""
    if benchmark == "mmmu":
        return mmmu, ["--model_path", str(model_path), "--data", str(data["mmmu"])]
    if benchmark == "mmstar":
        return mmstar, ["--model_path", str(model_path), "--data", str(data["mmstar"])]
    image_root = data["pope"].parent / "coco"
    return pope, ["--model_path", str(model_path), "--data", str(data["pope"]), "--image_root", str(image_root)]


def predictions_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("benchmark", ["mmmu", "mmstar", "pope"])
def test_drivers_answer_greedily_on_tiny_lumina(
    benchmark, tiny_dimoo_path, mmmu_dir, mmstar_tsv, pope_json, tmp_path, answer_calls
):
    module, args = driver_args(benchmark, {"mmmu": mmmu_dir, "mmstar": mmstar_tsv, "pope": pope_json},
                               tiny_dimoo_path)  # fmt: skip
    calls = answer_calls(LuminaDiMOOBackbone)  # the family is inferred from config.json (model_type llada)
    runs = {}
    for batch_size in (2, 1):
        out = tmp_path / f"{benchmark}_b{batch_size}"
        module.BENCHMARK.main([*args, "--out_dir", str(out), "--batch_size", str(batch_size), "--max_new_tokens",
                               "4", "--device", "cpu"])  # fmt: skip
        runs[batch_size] = (json.loads((out / "results.json").read_text()), predictions_of(out))
    assert calls and all(not options.do_sample and options.max_new_tokens == 4 for options, _, _ in calls)
    assert all(rollout.completion_ids.shape[1] == 4 for _, rollout, _ in calls)
    result, predictions = runs[2]
    assert result["benchmark"] == benchmark and result["num_samples"] == len(predictions) > 1
    assert result["headline"] == module.score(predictions)[result["headline_metric"]]
    # Greedy and batch-independent: padded batches of 2 answer as the rows do alone.
    assert [p["prediction"] for p in predictions] == [p["prediction"] for p in runs[1][1]]


@pytest.mark.parametrize("benchmark", ["mmmu", "mmstar"])
def test_one_token_mode_decodes_one_token_in_the_wrappers_layout(
    benchmark, tiny_dimoo_path, mmmu_dir, mmstar_tsv, tmp_path, answer_calls
):
    module, args = driver_args(benchmark, {"mmmu": mmmu_dir, "mmstar": mmstar_tsv}, tiny_dimoo_path)
    calls = answer_calls(LuminaDiMOOBackbone)
    out = tmp_path / benchmark
    module.BENCHMARK.main([*args, "--out_dir", str(out), "--one_token", "--batch_size", "2", "--device", "cpu"])
    result, predictions = json.loads((out / "results.json").read_text()), predictions_of(out)
    assert result["settings"]["one_token"] is True and result["settings"]["max_new_tokens"] == 1
    for options, rollout, _ in calls:
        assert options.one_token and options.max_new_tokens == 1 and not options.do_sample
        assert rollout.completion_ids.shape[1] == 1 and bool((rollout.record["unmask_step"] == 0).all())
        ids, slots, real = rollout.record["input_ids"], rollout.record["slots"], rollout.record["attention_mask"]
        for row in range(ids.shape[0]):
            slot, length = int(slots[row, 0]), int(real[row].sum())
            assert ids[row, slot - 1] == TOKENS.answer_start and ids[row, slot] == TOKENS.mask
            # `</answer>` + the wrapper's gen_length - 1 answer pads close every row, all seen by the attention.
            assert ids[row, slot + 1] == TOKENS.answer_end and length == slot + 2 + ONE_TOKEN_ANSWER_PADS
            assert bool((ids[row, slot + 2 : length] == TOKENS.answer_pad).all())
    # The predictions are those one-token answers, scored by the benchmark's own rule-based scorer.
    assert [p["prediction"] for p in predictions] == [text for _, _, texts in calls for text in texts]
    assert result["headline"] == module.score(predictions)["accuracy"]
    choices = [p for p in predictions if p.get("question_type", "multiple-choice") == "multiple-choice"]
    letters = [{**p, "prediction": p["answer"]} for p in choices]  # one-letter answers, each the gold one
    assert module.score(letters)["accuracy"] == 100.0


def test_one_token_mode_on_janus_is_one_greedy_token(tiny_janus_path, mmstar_tsv, tmp_path, answer_calls):
    calls = answer_calls(JanusBackbone)
    out = tmp_path / "janus"
    mmstar.BENCHMARK.main(["--model_path", str(tiny_janus_path), "--data", str(mmstar_tsv), "--out_dir", str(out),
                           "--one_token", "--device", "cpu"])  # fmt: skip
    assert calls and all(rollout.completion_ids.shape[1] == 1 for _, rollout, _ in calls)
    assert json.loads((out / "results.json").read_text())["settings"]["one_token"] is True


def test_one_token_refuses_longer_answers(tiny_dimoo_path, mmstar_tsv, tmp_path):
    args = ["--model_path", str(tiny_dimoo_path), "--data", str(mmstar_tsv), "--out_dir", str(tmp_path / "o")]
    with pytest.raises(ValueError, match="--one_token decodes one token"):
        mmstar.BENCHMARK.main([*args, "--one_token", "--max_new_tokens", "5"])
    with pytest.raises(ValueError, match="one_token=True decodes one greedy token"):
        AnswerSettings(one_token=True)
    with pytest.raises(ValueError, match="one greedy token in one step"):
        AnswerSampling(max_new_tokens=1, do_sample=True, one_token=True)


def test_runs_without_one_token_keep_their_run_key():
    assert "one_token" not in AnswerSettings().key_fields()
    assert AnswerSettings(max_new_tokens=1, one_token=True).key_fields()["one_token"] is True
