"""The trainer speaks only to `backbones.Backbone`: a second, minimal backbone written here (not shipped) runs a
PairGRPO step and a UniRL step through the unchanged PairGRPOTrainer, and its parameters move.

`BagBackbone` is a deliberately small unified model: answers are tokens of a word vocabulary drawn one at a time
from a prompt-bag-of-words head; images are 4 colour codes drawn from a second head and "decoded" as 2x2 patches.
Its `record` holds only what it needs to rescore (the prompt's word ids), unlike Janus's.
"""

import json
from typing import ClassVar

import torch
from pairgrpo_helpers import QUESTION, tiny_args, write_pairs
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

from backbones import Backbone, GeneratedImages, Rollout
from data_tools.make_unirl_prompts import build_rows
from open_r1.dataset import load_pair_dataset
from open_r1.trainer import PairGRPOTrainer
from rewards import RewardFunc

WORDS = ["<pad>", "<eos>", "<unk>", "A", "B", "C", "D", "a", "red", "blue", "green", "yellow", "square", "photo", "of"]
CODES = 4  # colour codes: red, blue, green, yellow (the order of WORDS)
PALETTE = torch.tensor([[1.0, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, -1]])  # [CODES, 3]
IMAGE_TOKENS = 4


def bag_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(WORDS)}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


class BagConfig(PretrainedConfig):
    model_type = "bag"
    hidden_size = 8  # read by DeepSpeed's "auto" sizes


class BagModel(PreTrainedModel):
    config_class = BagConfig

    def __init__(self, config: BagConfig):
        super().__init__(config)
        self.embed = torch.nn.EmbeddingBag(len(WORDS), 8, mode="mean")
        self.text_head = torch.nn.Linear(8, len(WORDS))
        self.image_head = torch.nn.Linear(8, CODES * IMAGE_TOKENS)
        self.generation_config = GenerationConfig()  # TRL reads it to build its (unused here) sampling config
        self.post_init()

    def text_logits(self, words: torch.Tensor) -> torch.Tensor:  # [N, W] -> [N, V]
        return self.text_head(self.embed(words))

    def image_logits(self, words: torch.Tensor) -> torch.Tensor:  # [N, W] -> [N, I, CODES]
        return self.image_head(self.embed(words)).view(-1, IMAGE_TOKENS, CODES)


class BagBackbone:
    name: ClassVar[str] = "bag"
    module_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "language_model": ("embed", "text_head"),
        "generation_head": ("image_head",),
    }

    def __init__(self):
        self.tokenizer = bag_tokenizer()
        self.calls: list[tuple[str, bool]] = []  # (method, own-image rows present)

    @property
    def pad_id(self) -> int:
        return 0

    def _words(self, texts) -> torch.Tensor:
        rows = [self.tokenizer.encode(t, add_special_tokens=False)[:16] or [2] for t in texts]
        out = torch.zeros(len(rows), 16, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def sample_images(self, model, prompts, options, generator=None, decode=True) -> GeneratedImages:
        words = self._words(prompts)
        logps = (model.image_logits(words) / options.temperature).log_softmax(-1)  # [N, I, CODES]
        codes = torch.multinomial(logps.exp().view(-1, CODES), 1, generator=generator).view(-1, IMAGE_TOKENS)
        rollout = Rollout(codes, torch.ones_like(codes), logps.gather(-1, codes[..., None])[..., 0], {"words": words})
        self.calls.append(("sample_images", False))
        return GeneratedImages(rollout, self.decode_images(model, codes) if decode else None)

    def image_logps(self, model, rollout, options) -> torch.Tensor:
        logps = (model.image_logits(rollout.record["words"]) / options.temperature).log_softmax(-1)
        return logps.gather(-1, rollout.completion_ids[..., None])[..., 0]  # [N, I]

    def decode_images(self, model, completion_ids) -> torch.Tensor:  # [N, 4] -> [N, 3, 2, 2]
        return PALETTE[completion_ids].permute(0, 2, 1).reshape(-1, 3, 2, 2)

    def _answer_words(self, questions, generated, own_image) -> torch.Tensor:
        words = self._words(questions)
        if own_image is not None and bool(own_image.any()):
            # Own-image rows see only their generated image, as words: the colour of each code.
            colours = generated.rollout.completion_ids + WORDS.index("red")  # [N, I]
            words[own_image] = 0
            words[own_image, :IMAGE_TOKENS] = colours[own_image]
        return words

    def sample_answers(self, model, questions, images, options, generated=None, own_image=None) -> Rollout:
        words = self._answer_words(questions, generated, own_image)
        logits = model.text_logits(words) / options.temperature  # [N, V]
        token = logits.argmax(-1, keepdim=True) if not options.do_sample else torch.multinomial(logits.softmax(-1), 1)
        ids = torch.cat([token, torch.ones_like(token)], dim=1)  # one word, then EOS
        logps = logits.log_softmax(-1).gather(-1, token).expand(-1, 2).clone()  # EOS: same state, a simplification
        self.calls.append(("sample_answers", own_image is not None and bool(own_image.any())))
        return Rollout(
            ids, torch.tensor([[1, 0]]).expand_as(ids).clone(), logps * torch.tensor([1.0, 0]), {"words": words}
        )

    def answer_rollout(self, questions, images, answers, options, generated=None, own_image=None) -> Rollout:
        ids = self._words(answers)[:, :1]
        return Rollout(ids, torch.ones_like(ids), None, {"words": self._answer_words(questions, generated, own_image)})

    def answer_logps(self, model, rollout, options) -> torch.Tensor:
        logps = (model.text_logits(rollout.record["words"]) / options.temperature).log_softmax(-1)
        return (
            logps.gather(-1, rollout.completion_ids[:, :1]).expand_as(rollout.completion_ids) * rollout.completion_mask
        )

    def decode_answers(self, completion_ids) -> list[str]:
        return [WORDS[row[0]] for row in completion_ids.tolist()]

    def save(self, model, out_dir, state_dict=None) -> None:
        model.save_pretrained(out_dir, state_dict=state_dict)

    def export_original(self, model, out_dir) -> None:
        self.save(model, out_dir)

    @classmethod
    def load(cls, path, dtype=None, device=None):
        return cls(), BagModel.from_pretrained(path)


def word_length(prompts, completions, **kwargs):
    return [len(c) / 6 for c in completions]  # dense: distinct sampled words almost always differ


def mostly_red(prompts, completions, images, **kwargs):
    return (images[:, 0] > 0).float().mean(dim=(1, 2)).tolist()  # share of red-channel-positive pixels


def test_the_minimal_backbone_satisfies_the_protocol():
    assert isinstance(BagBackbone(), Backbone)


def _train_one_step(tmp_path, data_path, funcs, **overrides):
    """One optimizer step of PairGRPO on the minimal backbone; returns (trainer, backbone, names of moved params)."""
    torch.manual_seed(0)
    model, backbone = BagModel(BagConfig()), BagBackbone()
    args = tiny_args(tmp_path / "run", trainable_modules=["language_model", "generation_head"], **overrides)
    trainer = PairGRPOTrainer(
        model=model, backbone=backbone, reward_funcs=funcs, args=args, train_dataset=load_pair_dataset(data_path)
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    return trainer, backbone, moved


def test_pairgrpo_step_on_a_second_backbone(tmp_path):
    funcs = [RewardFunc("word_length", "understand", word_length), RewardFunc("mostly_red", "generate", mostly_red)]
    trainer, backbone, moved = _train_one_step(tmp_path, write_pairs(tmp_path / "data"), funcs)
    assert {"embed.weight", "text_head.weight", "image_head.weight"} <= moved  # both tasks' heads trained
    history = trainer.state.log_history[0]
    assert history["understand/sampling_logp_abs_diff"] < 1e-6 and history["generate/sampling_logp_abs_diff"] < 1e-6
    assert [name for name, _ in backbone.calls] == ["sample_images", "sample_answers"]  # images first, one each
    trainer.save_model(str(tmp_path / "final"))
    reloaded = BagModel.from_pretrained(tmp_path / "final")
    torch.testing.assert_close(reloaded.image_head.weight, trainer.model.image_head.weight)


def test_unirl_step_on_a_second_backbone(tmp_path):
    rows = [row.to_dict() for row in build_rows(6, seed=0)[:2]]
    for row in rows:  # multiple-choice self rows in the backbone's words
        row.update(question=QUESTION.format("red", "blue", "green", "yellow"), answer="A")
    path = tmp_path / "self.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    seen = {}

    def judged_length(prompts, completions, judge_answers, own_image, **kwargs):
        seen.update(judge_answers=judge_answers, own_image=own_image)
        return [len(a) / 6 for a in judge_answers]  # the judge's answer depends on the image: a learnable signal

    # Named "unirl_image" so the config runs the image judge; its score is dense so one step moves both heads.
    funcs = [
        RewardFunc("word_length", "understand", word_length),
        RewardFunc("unirl_image", "generate", judged_length),
    ]
    names = [f.name for f in funcs]
    trainer, backbone, moved = _train_one_step(
        tmp_path, path, funcs, method="unirl", unirl_judge="greedy", reward_funcs=names
    )
    assert {"text_head.weight", "image_head.weight"} <= moved
    # The understanding rollout and the greedy judge both answered about the rows' own generated images.
    assert backbone.calls == [("sample_images", False), ("sample_answers", True), ("sample_answers", True)]
    assert all(seen["own_image"]) and len(seen["judge_answers"]) == 2 * 4
