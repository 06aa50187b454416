"""Lumina-DiMOO behind the backbone interface (`backbones.interface.Backbone`): the masked-diffusion implementation.

An action is a token revealed at one decode step. The samplers (MaskGIT images with CFG, LLaDA semi-autoregressive
answers) and the trajectory log-probs are the shared masked-diffusion ones (`backbones.masked_diffusion`); this file
only builds Lumina's sequences, hands them the bidirectional logits function, and keeps in `Rollout.record` what the
log-prob pass needs to rebuild every decode step's state: the all-masked start rows and the step of each reveal.
Gold answers (`answer_rollout`, the SFT target) are scored as one step from the all-masked answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from backbones.interface import AnswerSampling, GeneratedImages, ImageSampling, Rollout
from backbones.masked_diffusion import AtSlots, Canvas, SlotSample, TokenSpace, trajectory_logps
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from backbones.semi_ar_sampler import SemiARTextOptions, sample_semi_ar
from lumina_dimoo.attention import slot_logits_fn
from lumina_dimoo.checkpoint import load_pretrained, save_original
from lumina_dimoo.processor import DimooProcessor, PaddedRows, masked_slots
from lumina_dimoo.tokens import DimooTokens
from lumina_dimoo.vq import decode_codes, encode_codes, image_to_pixels, vq_scale

# Trainable-module groups, by submodule names of the loaded `LlamaForCausalLM` (+ its `vqvae`).
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "language_model": ("model", "lm_head"),
    "text_head": ("lm_head",),
    "vqvae": ("vqvae",),
}
DEFAULT_IMAGE_SIZE = 512  # generated images when config.json has no `pairuni_image_size` (PairUni's is [OPEN])
DEFAULT_IMAGE_STEPS = 64  # Lumina-DiMOO's t2i default (PairUni App. E: 35, set in the recipe)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def tokens_from_config(llada: dict) -> DimooTokens:
    """Special ids: the released ones, with mask / EOS read from the checkpoint's config.json when it has them."""
    defaults = DimooTokens()
    return DimooTokens(mask=llada.get("mask_token_id", defaults.mask), eos=llada.get("eos_token_id", defaults.eos))


class LuminaDiMOOBackbone:
    """Lumina-DiMOO (and the tiny layout) on transformers' `LlamaForCausalLM` with a 4D bidirectional mask."""

    name: ClassVar[str] = "lumina_dimoo"
    module_groups: ClassVar[dict[str, tuple[str, ...]]] = MODULE_GROUPS

    def __init__(self, processor: DimooProcessor, image_size: int, text_noise: str = "slots"):
        self.processor = processor
        self.image_size = image_size  # pixels per side of generated images; also the understanding-image budget
        # "slots": the text sampler's Gumbel noise only at the answer slots (same distribution); "sequence": over
        # every position x 134548 ids in float64 like the original (bitwise parity, ~1 GB per 1k-token row-step).
        self.text_noise = text_noise

    @classmethod
    def load(cls, path, dtype=None, device=None) -> tuple[LuminaDiMOOBackbone, torch.nn.Module]:
        model, tokenizer = load_pretrained(path, dtype=dtype, device=device)
        llada = model.config.llada_config
        size = int(llada.get("pairuni_image_size", DEFAULT_IMAGE_SIZE))
        scale = vq_scale(model.vqvae)
        processor = DimooProcessor(tokenizer, tokens_from_config(llada), image_grid=(size // scale, size // scale))
        return cls(processor, size), model

    def save(self, model: torch.nn.Module, out_dir: str | Path, state_dict: dict | None = None) -> None:
        # The original layout is also the training save format: one loader for both.
        save_original(model, self.tokenizer, out_dir, state_dict=state_dict)

    def export_original(self, model: torch.nn.Module, out_dir: str | Path) -> None:
        save_original(model, self.tokenizer, out_dir)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def tokens(self) -> DimooTokens:
        return self.processor.tokens

    @property
    def pad_id(self) -> int:
        return self.tokens.eos

    def logits_fn(self, model: torch.nn.Module, attention_mask: torch.Tensor) -> AtSlots:
        """The shared samplers' logits function for rows with padding mask `attention_mask` [B, L]."""
        return AtSlots(slot_logits_fn(model, attention_mask))

    # ------------------------------------------------------------------ images

    @property
    def image_space(self) -> TokenSpace:
        """Image codes: token c is id image_offset + c, scored over the codebook's logits only (as the original)."""
        return TokenSpace(self.tokens.mask, self.tokens.image_offset, self.tokens.codebook_size)

    def _image_canvas(self, record: dict[str, torch.Tensor]) -> Canvas:
        # The image slots are the masks of the start rows (row breaks and tags stay fixed), in sequence order.
        return Canvas(
            record["input_ids"], masked_slots(record["input_ids"], self.tokens.mask),
            record["uncond_input_ids"], masked_slots(record["uncond_input_ids"], self.tokens.mask),
        )  # fmt: skip

    @staticmethod
    def image_options(options: ImageSampling) -> MaskGitOptions:
        return MaskGitOptions(
            steps=options.steps or DEFAULT_IMAGE_STEPS, schedule="lumina_dimoo", cfg_weight=options.cfg_weight,
            temperature=options.temperature,
        )  # fmt: skip

    def sample_images(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        options: ImageSampling,
        generator: torch.Generator | list[torch.Generator] | None = None,
        decode: bool = True,
    ) -> GeneratedImages:
        if options.top_k is not None:
            raise ValueError(f"image_top_k={options.top_k}: Lumina-DiMOO's MaskGIT sampler has no top-k; use None.")
        rows = self.processor.encode_generation(list(prompts))
        cond, uncond = rows.cond.to(_device(model)), rows.uncond.to(_device(model))
        record = {
            "input_ids": cond.input_ids,
            "attention_mask": cond.attention_mask,
            "uncond_input_ids": uncond.input_ids,
            "uncond_attention_mask": uncond.attention_mask,
        }
        sample = sample_maskgit(
            self.logits_fn(model, cond.attention_mask), self._image_canvas(record), self.image_space,
            self.image_options(options), generator=generator,
            uncond_logits_fn=self.logits_fn(model, uncond.attention_mask),
        )  # fmt: skip
        record["unmask_step"] = sample.reveal_step  # [N, h*w]
        # The sampler's log-probs are of the CFG-mixed distribution: comparable only when the loss scores that one.
        logps = sample.logps if options.logprob == "cfg" else None
        rollout = Rollout(sample.tokens, sample.completion_mask, logps, record)
        return GeneratedImages(rollout, self.decode_images(model, sample.tokens) if decode else None)

    def image_logps(self, model: torch.nn.Module, rollout: Rollout, options: ImageSampling) -> torch.Tensor:
        r = rollout.record
        sampling = self.image_options(options)
        sample = SlotSample(rollout.completion_ids, r["unmask_step"], torch.zeros(()), rollout.completion_mask,
                            sampling.steps)  # fmt: skip
        logps, _ = trajectory_logps(
            self.logits_fn(model, r["attention_mask"]), self._image_canvas(r), sample, self.image_space,
            sampling.scoring(conditional=options.logprob == "conditional"), step_group=options.step_group,
            uncond_logits_fn=self.logits_fn(model, r["uncond_attention_mask"]),
        )  # fmt: skip
        return logps

    @torch.no_grad()
    def decode_images(self, model: torch.nn.Module, completion_ids: torch.Tensor) -> torch.Tensor:
        h, w = self.processor.image_grid
        pixels = decode_codes(model.vqvae, completion_ids.view(-1, h, w))  # [N, 3, H, W] in [0, 1]
        return pixels * 2 - 1

    # ------------------------------------------------------------------ answers

    @torch.no_grad()
    def understanding_codes(
        self,
        model: torch.nn.Module,
        images: Sequence[Image.Image | None],
        generated: GeneratedImages | None,
        own_image: torch.Tensor | None,
    ) -> list[torch.Tensor | None]:
        """VQ codes [h, w] of each row's image: rows flagged `own_image` reuse their generated codes directly (Lumina
        reads the same VQ tokens it writes), others encode their file once (deterministic resize, no random crop)."""
        scale = vq_scale(model.vqvae)
        own = own_image.tolist() if own_image is not None else [False] * len(images)
        if any(own) and generated is None:
            raise ValueError("rows ask about their generated image but no image was generated before the answers.")
        codes: list[torch.Tensor | None] = []
        for i, (image, is_own) in enumerate(zip(images, own, strict=True)):
            if is_own:
                codes.append(generated.rollout.completion_ids[i].view(*self.processor.image_grid).cpu())
            elif image is None:
                codes.append(None)
            else:
                pixels = image_to_pixels(image, scale, max_pixels=self.image_size**2)[None]
                codes.append(encode_codes(model.vqvae, pixels.to(_device(model)))[0].cpu())
        return codes

    @property
    def text_space(self) -> TokenSpace:
        """Answers: any vocabulary id (the original text sampler does not restrict its argmax to text ids)."""
        return TokenSpace(self.tokens.mask)

    @staticmethod
    def _record(rows: PaddedRows, length: int, unmask_step: torch.Tensor) -> dict[str, torch.Tensor]:
        slots = rows.span_start.unsqueeze(1) + torch.arange(length, device=rows.input_ids.device)  # [N, L]
        return {"input_ids": rows.input_ids, "attention_mask": rows.attention_mask, "slots": slots,
                "unmask_step": unmask_step}  # fmt: skip

    def text_options(self, options: AnswerSampling, length: int) -> SemiARTextOptions:
        return SemiARTextOptions(
            steps=options.steps or length, block_length=options.block_length or length,
            temperature=options.temperature if options.do_sample else 0.0,
            stop_ids=(self.tokens.eos, self.tokens.answer_end, self.tokens.answer_pad), noise=self.text_noise,
        )  # fmt: skip

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
        codes = self.understanding_codes(model, images, generated, own_image)
        length = options.max_new_tokens
        rows = self.processor.encode_understanding(list(questions), codes, length, options.system_prompt)
        rows = rows.to(_device(model))
        record = self._record(rows, length, torch.empty(0))
        canvas = Canvas(rows.input_ids, record["slots"], real=rows.attention_mask.bool())
        sample = sample_semi_ar(
            self.logits_fn(model, rows.attention_mask), canvas, self.text_space, self.text_options(options, length),
            generator=generator,
        )  # fmt: skip
        record["unmask_step"] = sample.reveal_step  # [N, L], -1 after a stop
        # Never-revealed slots (after a stop) hold -1: store EOS there so decoding and padding see a stop.
        ids = torch.where(sample.tokens >= 0, sample.tokens, self.tokens.eos)
        return Rollout(ids, sample.completion_mask, sample.logps, record)

    def answer_rollout(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        answers: Sequence[str],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
    ) -> Rollout:
        """Gold answers (the SFT target), scored as one decode step from the all-masked answer (`unmask_step` 0)."""
        if any(image is not None for image in images):
            raise ValueError(
                "answer_rollout on Lumina-DiMOO takes no image files (encoding them needs the VQ model, which this "
                "call does not get); pass rows that ask about their generated image (own_image) or no image."
            )
        codes = [None] * len(questions)
        if own_image is not None and bool(own_image.any()):
            codes = [
                generated.rollout.completion_ids[i].view(*self.processor.image_grid).cpu() if own else None
                for i, own in enumerate(own_image.tolist())
            ]
        ids, mask = self.gold_completion(answers)
        rows = self.processor.encode_understanding(list(questions), codes, ids.shape[1], options.system_prompt)
        device = generated.rollout.completion_ids.device if generated is not None else ids.device
        rows, ids, mask = rows.to(device), ids.to(device), mask.to(device)
        return Rollout(ids, mask, None, self._record(rows, ids.shape[1], torch.zeros_like(ids)))

    def gold_completion(self, answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gold answers as completions: ids/mask [N, L], each ending with EOS, right-padded with EOS (not counted)."""
        rows = [self.tokenizer.encode(a.strip(), add_special_tokens=False) + [self.tokens.eos] for a in answers]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.tokens.eos, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids, mask

    def answer_logps(self, model: torch.nn.Module, rollout: Rollout, options: AnswerSampling) -> torch.Tensor:
        r = rollout.record
        length = r["unmask_step"].shape[1]  # the trainer may have right-padded the completion beyond it
        sampling = self.text_options(options, length)
        mask = rollout.completion_mask[:, :length]
        sample = SlotSample(
            rollout.completion_ids[:, :length], r["unmask_step"], torch.zeros(()), mask, sampling.steps
        )
        canvas = Canvas(r["input_ids"], r["slots"], real=r["attention_mask"].bool())
        logps, _ = trajectory_logps(
            self.logits_fn(model, r["attention_mask"]), canvas, sample, self.text_space, sampling.scoring(),
            step_group=options.step_group,
        )  # fmt: skip
        return torch.nn.functional.pad(logps, (0, rollout.completion_ids.shape[1] - length))  # [N, L']

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        return self.processor.decode_answers(completion_ids)
