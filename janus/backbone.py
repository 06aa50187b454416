"""Janus-Pro behind the backbone interface (`backbones.interface.Backbone`): the first implementation.

Thin by design: every method is one of this package's functions (templates, KV-cached CFG sampler, answer sampler,
gathered log-probs, VQ decoding, both checkpoint formats) called with the options the trainer passes. One action is
one token per autoregressive step, so the trainer's log-probs [N, L] are per token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from backbones.interface import AnswerSampling, GeneratedImages, ImageSampling, Rollout, groups_frozen
from janus.checkpoint import export_original, load_pretrained, save_pretrained
from janus.decode import decode_image_tokens
from janus.forward import image_features
from janus.gumbel import straight_through_pixels
from janus.logprobs import answer_token_logps, image_token_logps
from janus.processor import GenerationBatch, JanusProcessor, UnderstandingBatch
from janus.sampling import sample_answer_tokens, sample_image_tokens
from janus.static_decode import default_decode

# Trainable-module groups, by their submodule names in transformers' `JanusForConditionalGeneration`.
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "language_model": ("model.language_model", "lm_head"),
    # The text head alone: with the LM body frozen, understanding (vision tower, aligner, text head) and generation
    # (generation head/embeddings) share no trained parameter, so neither task's update moves the other's inputs.
    "text_head": ("lm_head",),
    "vision_model": ("model.vision_model",),
    "aligner": ("model.aligner",),
    "vqmodel": ("model.vqmodel",),
    "generation_embeddings": ("model.generation_embeddings", "model.generation_aligner"),
    "generation_head": ("model.generation_head",),
}
# While these train, image features must be recomputed from pixels in every log-prob pass.
VISION_GROUPS = ("vision_model", "aligner")
# A row whose question is about its own generated image has no image file: this stands in until the swap.
_PLACEHOLDER = Image.new("RGB", (16, 16), (128, 128, 128))


def with_generated_images(
    pixel_values: torch.Tensor, generated: torch.Tensor | None, own_image: torch.Tensor | None, preprocess
) -> torch.Tensor:
    """Understanding pixels [N, 3, S, S] where rows flagged `own_image` [N] take the image generated in their row.

    `generated` [N, 3, H, W] in [-1, 1] (decoded rollouts) goes through `preprocess` (the processor's tensor path),
    so a self-generated image reaches the vision tower exactly like a file would (the UniRL setting). Keeps grad.
    """
    if own_image is None or not bool(own_image.any()):
        return pixel_values
    if generated is None:
        raise ValueError("rows ask about their generated image but no image was generated before the answers.")
    out = pixel_values.clone()
    out[own_image] = preprocess(generated[own_image.to(generated.device)]).to(out)
    return out


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class JanusBackbone:
    """Janus-Pro 1B / 7B (and the tiny and toy layouts), on transformers' `JanusForConditionalGeneration`."""

    name: ClassVar[str] = "janus"
    module_groups: ClassVar[dict[str, tuple[str, ...]]] = MODULE_GROUPS

    def __init__(self, processor: JanusProcessor):
        self.processor = processor

    @classmethod
    def load(cls, path, dtype=None, device=None) -> tuple[JanusBackbone, torch.nn.Module]:
        model, processor = load_pretrained(path, dtype=dtype, device=device)
        return cls(processor), model

    def save(self, model: torch.nn.Module, out_dir: str | Path, state_dict: dict | None = None) -> None:
        save_pretrained(model, self.processor, out_dir, state_dict=state_dict)

    def export_original(self, model: torch.nn.Module, out_dir: str | Path) -> None:
        export_original(model, self.processor.tokenizer, out_dir)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def pad_id(self) -> int:
        return self.processor.special.pad_id

    # ------------------------------------------------------------------ images

    def sample_images(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        options: ImageSampling,
        generator: torch.Generator | list[torch.Generator] | None = None,
        decode: bool = True,
    ) -> GeneratedImages:
        device = _device(model)
        batch = self.processor.encode_generation(list(prompts)).to(device)
        samples = sample_image_tokens(
            model, batch, cfg_weight=options.cfg_weight, temperature=options.temperature, top_k=options.top_k,
            generator=generator, return_logps=True, decode=options.decode or default_decode(device),
        )  # fmt: skip
        # Image completions are always the full grid with no EOS: never "truncated", every token counts.
        record = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        record["uncond_input_ids"] = batch.uncond_input_ids
        # The sampler's log-probs are of the CFG-mixed distribution: comparable only when the loss scores that one.
        logps = samples.logps if options.logprob == "cfg" else None
        rollout = Rollout(samples.tokens, torch.ones_like(samples.tokens), logps, record)
        pixels = decode_image_tokens(model, samples.tokens) if decode else None  # [N, 3, H, W]
        return GeneratedImages(rollout, pixels)

    def image_logps(self, model: torch.nn.Module, rollout: Rollout, options: ImageSampling) -> torch.Tensor:
        r = rollout.record
        batch = GenerationBatch(r["input_ids"], r["attention_mask"], r["uncond_input_ids"])
        return image_token_logps(
            model, batch, rollout.completion_ids, cfg_weight=options.scored_cfg_weight, temperature=options.temperature
        )

    def decode_images(self, model: torch.nn.Module, completion_ids: torch.Tensor) -> torch.Tensor:
        return decode_image_tokens(model, completion_ids)

    def straight_through_pixels(
        self, model: torch.nn.Module, prompts: Sequence[str], tokens: torch.Tensor, options: ImageSampling, tau: float
    ) -> torch.Tensor:
        """Pixels of `tokens` whose backward pass reaches the image policy (UniRL end-to-end SFT; `janus.gumbel`)."""
        batch = self.processor.encode_generation(list(prompts)).to(_device(model))
        return straight_through_pixels(
            model, batch, tokens, cfg_weight=options.cfg_weight, temperature=options.temperature, tau=tau
        )

    # ------------------------------------------------------------------ answers

    def _understanding_record(
        self,
        model: torch.nn.Module | None,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        options: AnswerSampling,
        generated: GeneratedImages | None,
        own_image: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        system = {} if options.system_prompt is None else {"system_prompt": options.system_prompt}
        pil = [_PLACEHOLDER if image is None else image for image in images]
        batch = self.processor.encode_understanding(list(questions), pil, **system)
        pixels = generated.pixels if generated is not None else None
        if pixels is not None:
            batch.pixel_values = batch.pixel_values.to(pixels.device)
        pixel_values = with_generated_images(batch.pixel_values, pixels, own_image, self.processor.preprocess_images)
        device = pixel_values.device if model is None else _device(model)
        return {
            "input_ids": batch.input_ids.to(device),
            "attention_mask": batch.attention_mask.to(device),
            "pixel_values": pixel_values.to(device),
        }

    def sample_answers(
        self,
        model: torch.nn.Module,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        record = self._understanding_record(model, questions, images, options, generated, own_image)
        # Frozen vision tower + aligner: the rollout's image features serve every log-prob pass of the step.
        prefixes = [p for group in VISION_GROUPS for p in MODULE_GROUPS[group]]
        features = image_features(model, record["pixel_values"]) if groups_frozen(model, prefixes) else None
        batch = UnderstandingBatch(record["input_ids"], record["attention_mask"], record["pixel_values"])
        device = _device(model)
        answers = sample_answer_tokens(
            model, batch, max_new_tokens=options.max_new_tokens, temperature=options.temperature,
            top_p=options.top_p, top_k=options.top_k or None,  # TRL uses 0 / None for "no top-k"
            do_sample=options.do_sample, eos_token_id=self.processor.special.eos_id, pad_token_id=self.pad_id,
            generator=generator, return_logps=True, features=features, decode=options.decode or default_decode(device),
        )  # fmt: skip
        if features is not None:
            record["features"] = features  # [N, P, D]
        return Rollout(answers.completion_ids, answers.completion_mask, answers.logps, record)

    def answer_rollout(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        answers: Sequence[str],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
    ) -> Rollout:
        record = self._understanding_record(None, questions, images, options, generated, own_image)
        ids, mask = self.gold_completion(answers)
        device = record["input_ids"].device
        return Rollout(ids.to(device), mask.to(device), None, record)

    def gold_completion(self, answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gold answers as assistant completions: ids/mask [N, L], right-padded, each ending with EOS.

        The template renders a finished assistant turn as `"<|Assistant|>: {answer}<eos>"`, so the completion after
        the prompt's `"<|Assistant|>:"` is `" {answer}"` + EOS.
        """
        eos = self.processor.special.eos_id
        rows = [self.tokenizer.encode(" " + a.strip(), add_special_tokens=False) + [eos] for a in answers]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids, mask

    def answer_logps(self, model: torch.nn.Module, rollout: Rollout, options: AnswerSampling) -> torch.Tensor:
        r = rollout.record
        batch = UnderstandingBatch(r["input_ids"], r["attention_mask"], r["pixel_values"])
        return answer_token_logps(
            model, batch, rollout.completion_ids, rollout.completion_mask, temperature=options.temperature,
            features=r.get("features"),
        )  # fmt: skip

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        return self.processor.decode_answers(completion_ids)
