"""UniRL GRPO on the PairGRPO path: self rows in the pair dataset, answers about the row's own generated image, the
image judge's reward wiring (self rows, PairUG rows, mixed batches, judge modes) and the UniRL config checks."""

import json

import pytest
import torch
from pairgrpo_helpers import QUESTION, learnable_rewards, tiny_args

import janus.backbone as janus_backbone
from data_tools.make_unirl_prompts import build_rows
from janus.backbone import JanusBackbone
from open_r1.configs import PairGRPOConfig
from open_r1.dataset import PAIR_COLUMNS, load_pair_dataset
from rewards import build_reward_funcs

K = 4  # tiny_args: num_generations
UNIRL = ["accuracy", "unirl_image", "self_check"]


def _write_mixed(folder, self_rows: int = 1, with_gen_question: bool = True):
    """A pair (first line; its generation sample has an o3-style question when asked) then `self_rows` self rows."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), "red").save(folder / "red.png")
    question = QUESTION.format("red", "blue", "green", "yellow")
    gen = {"image_path": "red.png", "prompt": "a red square", "tag": "demo"}
    if with_gen_question:
        gen.update(question=question, answer="A")
    pair = {"similarity": 0.5, "pair_type": "retrieved", "generate_ann": gen,
            "understand_ann": {"image_path": "red.png", "question": question, "answer": "A", "tag": "demo"}}  # fmt: skip
    lines = [pair] + [row.to_dict() for row in build_rows(6, seed=0)[:self_rows]]
    path = folder / "mixed.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def make_unirl_trainer(tiny_janus_path):
    """Factory: a PairGRPOTrainer whose config lists `names` (UniRL fields) and which is given `funcs` to call."""
    from open_r1.trainer import PairGRPOTrainer

    def make(output_dir, data_path, names, funcs=None, **overrides):
        args = tiny_args(output_dir, reward_funcs=names, understanding_prompt_template="{question}", **overrides)
        backbone, model = JanusBackbone.load(tiny_janus_path, dtype=torch.float32)
        funcs = funcs if funcs is not None else build_reward_funcs(names)
        dataset = load_pair_dataset(data_path)
        trainer = PairGRPOTrainer(model=model, backbone=backbone, reward_funcs=funcs, args=args, train_dataset=dataset)
        return trainer, model

    return make


def _rows(trainer):
    return [dict(trainer.train_dataset[i]) for i in range(2) for _ in range(K)]  # what TRL's RepeatSampler yields


def test_self_rows_load_alone_and_mixed_with_pairs(tmp_path):
    path = _write_mixed(tmp_path, self_rows=2)
    ds = load_pair_dataset(path)
    assert tuple(ds.column_names) == PAIR_COLUMNS and ds["pair_type"] == ["retrieved", "self", "self"]
    row, first = ds[1], build_rows(6, seed=0)[0]
    assert (row["prompt"], row["und_question"], row["und_answer"]) == (first.prompt, first.question, first.answer)
    assert (row["gen_question"], row["gen_answer"]) == (first.question, first.answer)  # asked about the drawing
    assert row["own_image"] and row["und_image_path"] == "" and row["similarity"] == 1.0  # weight 1
    assert not ds[0]["own_image"] and ds[0]["gen_answer"] == "A"
    assert load_pair_dataset(path, pair_types=["self"])["pair_type"] == ["self", "self"]
    assert load_pair_dataset(path, pair_types=["retrieved"])["own_image"] == [False]


def test_bad_self_rows_name_file_line_and_field(tmp_path):
    path = _write_mixed(tmp_path, self_rows=2)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["answer"] = "Z"  # not one of the options
    path.write_text("\n".join([*lines[:2], json.dumps(bad)]) + "\n")
    with pytest.raises(ValueError, match=r"mixed\.jsonl:3: answer: .*fix:"):
        load_pair_dataset(path)
    assert load_pair_dataset(path, skip_invalid=True)["pair_type"] == ["retrieved", "self"]


def _record_vision_inputs(model):
    seen = []
    handle = model.model.vision_model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    return seen, handle


def test_train_step_answers_about_the_image_generated_in_the_same_row(make_unirl_trainer, tmp_path, monkeypatch):
    import open_r1.trainer.pair_grpo_trainer as trainer_module

    # Learnable synthetic rewards; the config's judged rewards make the judge run too.
    trainer, model = make_unirl_trainer(tmp_path / "run", _write_mixed(tmp_path / "data"), UNIRL, learnable_rewards(),
                                        trainable_modules=["language_model", "generation_head"])  # fmt: skip
    decoded, flags = [], []
    decode, pair_rows = janus_backbone.decode_image_tokens, trainer_module.pair_rows

    def recording_decode(*args, **kwargs):
        decoded.append(decode(*args, **kwargs))
        return decoded[-1]

    def recording_rows(*args):
        rows = pair_rows(*args)
        flags.append(rows.own_image)
        return rows

    monkeypatch.setattr(janus_backbone, "decode_image_tokens", recording_decode)
    monkeypatch.setattr(trainer_module, "pair_rows", recording_rows)
    seen, handle = _record_vision_inputs(model)
    before = model.model.generation_head.proj_out.weight.detach().clone()
    trainer.train()
    handle.remove()

    own = flags[0]  # [N] the self row's K repeated rows, then the pair's (or the other way round)
    assert own.any() and (~own).any()  # a mixed batch
    expected = trainer.backbone.processor.preprocess_images(
        decoded[0]
    )  # the step's freshly decoded images, tensor path
    understanding_batch = seen[0]  # the first vision-tower call of the step: the understanding rollout
    assert torch.equal(understanding_batch[own], expected[own])  # row i answers about the image of row i
    assert not torch.allclose(understanding_batch[~own], expected[~own])  # PairUG rows: their own image file
    assert torch.equal(seen[1], expected)  # then the greedy judge looks at every generated image
    assert not torch.equal(model.model.generation_head.proj_out.weight, before)  # the image policy trained


def _recording(names, calls):
    funcs = build_reward_funcs(names)
    for func in funcs:
        fn = func.fn

        def record(prompts, completions, _fn=fn, _name=func.name, **kwargs):
            out = _fn(prompts, completions, **kwargs)
            calls[_name] = {"completions": list(completions), "out": out, **kwargs}
            return out

        func.fn = record
    return funcs


def _spy_greedy_answers(trainer, monkeypatch, record):
    """Call `record(model, questions)` for every greedy answer decode (the judge's) of the trainer's backbone."""
    real = trainer.backbone.sample_answers

    def spy(model, questions, images, options, *args):
        if not options.do_sample:
            record(model, list(questions))
        return real(model, questions, images, options, *args)

    monkeypatch.setattr(trainer.backbone, "sample_answers", spy)


@pytest.mark.parametrize("mode", ["sampled", "greedy", "frozen"])
def test_image_rewards_on_a_mixed_batch_for_each_judge(make_unirl_trainer, tmp_path, monkeypatch, mode):
    names = ["accuracy", "unirl_image"] + (["self_check"] if mode != "sampled" else [])
    calls, judged = {}, []
    funcs = _recording(names, calls)
    trainer, model = make_unirl_trainer(
        tmp_path / "run", _write_mixed(tmp_path / "data"), names, funcs, unirl_judge=mode
    )
    _spy_greedy_answers(trainer, monkeypatch, lambda model, questions: judged.append((model, questions)))
    rows = _rows(trainer)
    torch.manual_seed(0)
    trainer._generate_and_score_completions(rows)

    own = [row["own_image"] for row in rows]
    image = calls["unirl_image"]
    assert image["own_image"] == own and image["question"] == [row["gen_question"] for row in rows]
    assert [v is not None for v in image["out"]] == own  # unirl_image scores the self rows only
    assert len(image["judge_answers"]) == len(rows)
    if mode == "sampled":
        assert judged == [] and image["judge_answers"] == calls["accuracy"]["completions"]
        return
    assert [v is not None for v in calls["self_check"]["out"]] == [not o for o in own]  # PairUG rows with a question
    (judge, questions), = judged  # one decode of every row  # fmt: skip
    assert questions == [
        trainer.args.understanding_prompt_template.format(question=row["gen_question"]) for row in rows
    ]
    assert (judge is trainer.judge) == (mode == "frozen") and (trainer.judge is None) == (mode != "frozen")
    if mode == "frozen":
        assert judge is not model and not any(p.requires_grad for p in judge.parameters())


def test_the_judge_decodes_every_step_even_without_self_rows(make_unirl_trainer, tmp_path, monkeypatch, pair_jsonl):
    """ZeRO-3: every rank calls the same modules every step, so the judge runs on a rank holding only PairUG rows."""
    calls, judged = {}, []
    names = ["accuracy", "unirl_image"]
    trainer, _ = make_unirl_trainer(tmp_path / "run", pair_jsonl, names, _recording(names, calls))
    _spy_greedy_answers(trainer, monkeypatch, lambda model, questions: judged.append(len(questions)))
    trainer._generate_and_score_completions(_rows(trainer))
    assert judged == [2 * K] and all(v is None for v in calls["unirl_image"]["out"])


def test_unirl_config_checks(tmp_path):
    def config(**kwargs):
        return PairGRPOConfig(output_dir=str(tmp_path), bf16=False, report_to=[], **kwargs)

    assert config(method="unirl", reward_funcs=["accuracy", "unirl_image"]).uses_frozen_judge is False
    assert config(reward_funcs=["accuracy", "self_check"], unirl_judge="frozen").uses_frozen_judge
    assert not config(reward_funcs=["accuracy", "hps_v2.1"]).judges_images
    with pytest.raises(ValueError, match="lacks 'unirl_image'"):
        config(method="unirl", reward_funcs=["accuracy", "hps_v2.1"])
    with pytest.raises(ValueError, match="self_check with unirl_judge='sampled'"):
        config(reward_funcs=["accuracy", "self_check"], unirl_judge="sampled")
    with pytest.raises(ValueError, match="unirl_judge"):
        config(unirl_judge="majority")
    with pytest.raises(ValueError, match="method"):
        config(method="t2i-r1")
    with pytest.raises(ValueError, match="answer_judge_cache_dir"):
        config(answer_judge_model="gpt-4o-mini")


@pytest.mark.parametrize(("method", "card"), [("unirl", "UniRL"), ("pairgrpo", "PairGRPO")])
def test_the_model_card_names_the_configured_method(tmp_path, method, card):
    from types import SimpleNamespace

    from open_r1.trainer.model_card import model_card_info

    reward_funcs = ["accuracy", "unirl_image"]
    args = PairGRPOConfig(output_dir=str(tmp_path), bf16=False, report_to=[], method=method, reward_funcs=reward_funcs)
    trainer = SimpleNamespace(  # what the card reads from a PairGRPOTrainer
        args=args,
        model=SimpleNamespace(config=SimpleNamespace(_name_or_path="Janus-Pro-1B")),
        state=SimpleNamespace(log_history=[], global_step=0),
    )
    assert model_card_info(trainer, "run", tmp_path).method == card


def test_the_llm_answer_judge_is_built_from_the_config(tmp_path, monkeypatch):
    from open_r1.grpo import answer_judge

    monkeypatch.setenv("OPENAI_API_KEY", "local")
    args = dict(output_dir=str(tmp_path), bf16=False, report_to=[])
    assert answer_judge(PairGRPOConfig(**args)) is None
    from data_tools.loopback_openai import FakeOpenAI

    with FakeOpenAI() as server:  # serves "o3": answer_judge checks the model name at start (GET /models)
        judge = answer_judge(
            PairGRPOConfig(**args, answer_judge_model="o3", answer_judge_cache_dir=str(tmp_path / "cache"),
                           answer_judge_base_url=server.base_url)
        )  # fmt: skip
    assert judge.model == "o3" and str(judge.client.base_url).startswith(server.base_url)
    with pytest.raises(ValueError, match="answer judge: cannot reach"):
        answer_judge(
            PairGRPOConfig(**args, answer_judge_model="o3", answer_judge_cache_dir=str(tmp_path / "cache"),
                           answer_judge_base_url="http://127.0.0.1:9/v1")
        )  # fmt: skip
