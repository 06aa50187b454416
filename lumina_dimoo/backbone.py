"""Lumina-DiMOO behind the backbone interface (`backbones.interface.Backbone`): the masked-diffusion implementation.

An action is a token revealed at one decode step. The samplers (Lumina's MaskGIT schedule with CFG for images, LLaDA
semi-autoregressive text) and the trajectory log-probs are the shared masked-diffusion ones in `backbones`; this
file builds Lumina's sequences, hands the samplers the bidirectional logits at the sampled slots, and keeps in
`Rollout.record` what the log-prob pass needs to rebuild every decode step: the all-masked start rows, the slots
and the step of each reveal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from backbones.interface import AnswerSampling, GeneratedImages, ImageSampling, Rollout
from backbones.masked_diffusion import (
    AtSlots,
    Canvas,
    GeneratorArg,
    SlotSample,
    TokenSpace,
    image_rollout,
    trajectory_logps,
)
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from backbones.semi_ar_sampler import SemiARTextOptions, sample_semi_ar, transfer_counts
from lumina_dimoo.attention import slot_logits_fn
from lumina_dimoo.checkpoint import load_pretrained, save_original
from lumina_dimoo.processor import DimooProcessor, PaddedRows, masked_slots
from lumina_dimoo.tokens import ONE_TOKEN_ANSWER_PADS, DimooTokens
from lumina_dimoo.vq import decode_codes, encode_codes, image_to_pixels, vq_scale

logger = logging.getLogger(__name__)

# Trainable-module groups, by submodule names of the loaded `LlamaForCausalLM` (+ its `vqvae`).
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "language_model": ("model", "lm_head"),
    "text_head": ("lm_head",),
    "vqvae": ("vqvae",),
}
DEFAULT_IMAGE_SIZE = 512  # generated images when config.json has no `pairuni_image_size` (PairUni's is [OPEN])
DEFAULT_IMAGE_STEPS = 64  # Lumina-DiMOO's t2i default (PairUni App. E: 35, set in the recipe)
# Stands in for rows without an image file so every row runs one VQ encode (same module calls on every rank).
_PLACEHOLDER = Image.new("RGB", (16, 16), (128, 128, 128))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def tokens_from_config(llada: dict, codebook_size: int | None = None) -> DimooTokens:
    """Special ids: the released ones, with mask / EOS read from the checkpoint's config.json when it has them, and
    the codebook size of its VQ (`vqvae/config.json`: 8192 for the released model, smaller for the demo's toy)."""
    defaults = DimooTokens()
    tokens = DimooTokens(
        mask=llada.get("mask_token_id", defaults.mask),
        eos=llada.get("eos_token_id", defaults.eos),
        codebook_size=codebook_size or defaults.codebook_size,
    )
    width = llada.get("embedding_size") or llada.get("vocab_size")
    if width is not None and width < tokens.vocab_size:
        raise ValueError(
            f"config.json: embedding_size={width} cannot hold the {tokens.codebook_size} image codes from id "
            f"{tokens.image_offset}; set it to at least {tokens.vocab_size} (or shrink vqvae num_vq_embeddings)."
        )
    return tokens


def logits_at_slots(model: torch.nn.Module, attention_mask: torch.Tensor) -> AtSlots:
    """The samplers' logits function for rows with padding mask `attention_mask` [B, L]."""
    return AtSlots(slot_logits_fn(model, attention_mask))


def _fit(logps: torch.Tensor, width: int) -> torch.Tensor:
    """Slot log-probs [N, S] right-padded with 0 to the rollout's (trainer-padded) completion width."""
    return torch.nn.functional.pad(logps, (0, width - logps.shape[1]))


class LuminaDiMOOBackbone:
    """Lumina-DiMOO (and the tiny layout) on transformers' `LlamaForCausalLM` with a 4D bidirectional mask.

    `text_noise` is the LLaDA sampler's noise layout: "slots" (noise only at the answer slots; the default, since
    the original's [L, 134548] float64 draw per step is ~1 GB at L = 1000) or "sequence" (the original's draws, for
    bitwise parity at batch 1). Same distribution either way.
    """

    name: ClassVar[str] = "lumina_dimoo"
    module_groups: ClassVar[dict[str, tuple[str, ...]]] = MODULE_GROUPS

    def __init__(self, processor: DimooProcessor, image_size: int, text_noise: str = "slots"):
        self.processor = processor
        self.image_size = image_size  # understanding images are shrunk to at most image_size**2 pixels
        self.text_noise = text_noise

    @classmethod
    def load(cls, path, dtype=None, device=None) -> tuple[LuminaDiMOOBackbone, torch.nn.Module]:
        model, tokenizer = load_pretrained(path, dtype=dtype, device=device)
        llada = model.config.llada_config
        size = int(llada.get("pairuni_image_size", DEFAULT_IMAGE_SIZE))
        scale = vq_scale(model.vqvae)
        tokens = tokens_from_config(llada, model.vqvae.config.num_vq_embeddings)
        processor = DimooProcessor(tokenizer, tokens, image_grid=(size // scale, size // scale))
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

    # ------------------------------------------------------------------ images

    @property
    def image_space(self) -> TokenSpace:
        """Image slots hold codes: id = image_offset + code, scored over the codebook's logits only."""
        return TokenSpace(self.tokens.mask, offset=self.tokens.image_offset, size=self.tokens.codebook_size)

    @staticmethod
    def maskgit_options(options: ImageSampling) -> MaskGitOptions:
        steps = options.steps or DEFAULT_IMAGE_STEPS
        return MaskGitOptions(steps, "lumina_dimoo", cfg_weight=options.cfg_weight, temperature=options.temperature)

    def sample_images(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        options: ImageSampling,
        generator: GeneratorArg = None,
        decode: bool = True,
    ) -> GeneratedImages:
        if options.top_k is not None:
            raise ValueError(f"image_top_k={options.top_k}: Lumina-DiMOO's MaskGIT sampler has no top-k; use None.")
        rows = self.processor.encode_generation(list(prompts))
        cond, uncond = rows.cond.to(_device(model)), rows.uncond.to(_device(model))
        record = {
            "input_ids": cond.input_ids,  # [N, L] with every code slot masked: the start of the trajectory
            "attention_mask": cond.attention_mask,
            "slots": masked_slots(cond.input_ids, self.tokens.mask),  # [N, h*w]
            "uncond_input_ids": uncond.input_ids,  # [N, L'] `<uncondition>` prompt + the same tail
            "uncond_attention_mask": uncond.attention_mask,
            "uncond_slots": masked_slots(uncond.input_ids, self.tokens.mask),
        }
        sample = sample_maskgit(
            logits_at_slots(model, cond.attention_mask), Canvas.from_record(record), self.image_space,
            self.maskgit_options(options), generator=generator,
            uncond_logits_fn=logits_at_slots(model, uncond.attention_mask),
        )  # fmt: skip
        return image_rollout(sample, record, options, self.decode_images(model, sample.tokens) if decode else None)

    def image_logps(self, model: torch.nn.Module, rollout: Rollout, options: ImageSampling) -> torch.Tensor:
        """Each code scored at the state of its decode step (one forward per `step_group` steps, x2 with CFG)."""
        r, maskgit = rollout.record, self.maskgit_options(options)
        codes = rollout.completion_ids[:, : r["slots"].shape[1]]
        sample = SlotSample.recorded(codes, r["unmask_step"], maskgit.steps)
        logps, _ = trajectory_logps(
            logits_at_slots(model, r["attention_mask"]), Canvas.from_record(r), sample, self.image_space,
            maskgit.scoring(conditional=options.logprob == "conditional"), step_group=options.step_group,
            uncond_logits_fn=logits_at_slots(model, r["uncond_attention_mask"]),
        )  # fmt: skip
        return _fit(logps, rollout.completion_ids.shape[1])

    @torch.no_grad()
    def decode_images(self, model: torch.nn.Module, completion_ids: torch.Tensor) -> torch.Tensor:
        h, w = self.processor.image_grid
        pixels = decode_codes(model.vqvae, completion_ids[:, : h * w].reshape(-1, h, w))  # [N, 3, H, W] in [0, 1]
        return pixels.float() * 2 - 1

    # ------------------------------------------------------------------ answers

    @torch.no_grad()
    def understanding_codes(
        self,
        model: torch.nn.Module,
        images: Sequence[Image.Image | None],
        generated: GeneratedImages | None,
        own_image: torch.Tensor | None,
    ) -> list[torch.Tensor | None]:
        """VQ codes [h, w] of each row's image. Rows flagged `own_image` reuse their generated codes (Lumina reads
        the VQ tokens it writes, so no decode-encode round trip); files are resized deterministically (no random
        crop) and encoded one row at a time, a placeholder for rows without one (same VQ calls on every rank)."""
        own = own_image.tolist() if own_image is not None else [False] * len(images)
        if any(own) and generated is None:
            raise ValueError("rows ask about their generated image but no image was generated before the answers.")
        scale, device = vq_scale(model.vqvae), _device(model)
        codes: list[torch.Tensor | None] = []
        for i, (image, is_own) in enumerate(zip(images, own, strict=True)):
            file_image = image is not None and not is_own
            pixels = image_to_pixels(image if file_image else _PLACEHOLDER, scale, max_pixels=self.image_size**2)
            encoded = encode_codes(model.vqvae, pixels[None].to(device))[0]  # [h, w]
            if is_own:
                codes.append(generated.rollout.completion_ids[i, : self._image_len].view(*self.processor.image_grid))
            else:
                codes.append(encoded if file_image else None)
        return codes

    @property
    def _image_len(self) -> int:
        h, w = self.processor.image_grid
        return h * w

    def text_options(self, options: AnswerSampling) -> SemiARTextOptions:
        """LLaDA sampler settings; greedy = temperature 0. No early stop: every rank runs the same forwards."""
        length = options.max_new_tokens
        tau = options.temperature if options.do_sample else 0.0
        steps, block = options.steps or length, options.block_length or length
        return SemiARTextOptions(steps=steps, block_length=block, temperature=tau, noise=self.text_noise)

    def _text_canvas(self, record: dict[str, torch.Tensor]) -> Canvas:
        return Canvas(record["input_ids"], record["slots"], real=record["attention_mask"].bool())

    def _understanding_record(self, questions, codes, options: AnswerSampling, device) -> dict[str, torch.Tensor]:
        """Prompt rows with `max_new_tokens` masked answer slots, and where those slots are. `one_token`: the
        VLMEvalKit wrapper's layout, one slot followed by `</answer>` and its answer pads."""
        length = options.max_new_tokens
        pads = ONE_TOKEN_ANSWER_PADS if options.one_token else 0
        rows: PaddedRows = self.processor.encode_understanding(
            list(questions), codes, length, options.system_prompt, answer_pads=pads
        )
        rows = rows.to(device)
        slots = rows.span_start.unsqueeze(1) + torch.arange(length, device=device)  # [N, L]
        return {"input_ids": rows.input_ids, "attention_mask": rows.attention_mask, "slots": slots}

    def completion_mask(self, completion_ids: torch.Tensor) -> torch.Tensor:
        """1 up to and including the first EOS / `</answer>` / answer pad (the rest is filler the loss skips)."""
        stops = torch.isin(completion_ids, torch.tensor(self._stop_ids, device=completion_ids.device))
        after = (stops.long().cumsum(dim=1) - stops.long()) > 0  # strictly after the first stop
        return (~after).long()

    @property
    def _stop_ids(self) -> tuple[int, ...]:
        return self.tokens.eos, self.tokens.answer_end, self.tokens.answer_pad

    def sample_answers(
        self,
        model: torch.nn.Module,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
        generator: GeneratorArg = None,
    ) -> Rollout:
        """One answer per row by the LLaDA sampler; `generator` may be one per row (tokens then independent of
        the batch). top_p / top_k are not part of LLaDA's sampler and are ignored."""
        codes = self.understanding_codes(model, images, generated, own_image)
        record = self._understanding_record(questions, codes, options, _device(model))
        sample = sample_semi_ar(
            logits_at_slots(model, record["attention_mask"]), self._text_canvas(record),
            TokenSpace(self.tokens.mask), self.text_options(options), generator=generator,
        )  # fmt: skip
        record["unmask_step"] = sample.reveal_step  # [N, L]
        mask = self.completion_mask(sample.tokens) * sample.completion_mask
        return Rollout(sample.tokens, mask, sample.logps * mask, record)

    def answer_rollout(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        answers: Sequence[str],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
    ) -> Rollout:
        """Gold answers (then EOS, EOS-filled) revealed left to right in `steps` even chunks per block: scored as
        the text sampler would have scored that trajectory. Only rows about their own generated image (UniRL SFT):
        encoding a file needs the model's VQ, which this call does not get."""
        if any(image is not None for image in images) or generated is None or own_image is None:
            raise ValueError(
                "lumina_dimoo answer_rollout: image files need the model's VQ encoder; pass rows about their own "
                "generated image (images None, own_image True, generated set), or score sampled answers instead."
            )
        if not bool(own_image.all()):
            raise ValueError("lumina_dimoo answer_rollout: every row needs own_image=True (images are all None).")
        codes = [generated.rollout.completion_ids[i, : self._image_len].view(*self.processor.image_grid) for i in
                 range(len(questions))]  # fmt: skip
        device, length = generated.rollout.completion_ids.device, options.max_new_tokens
        record = self._understanding_record(questions, codes, options, device)
        ids = self.gold_completion(answers, length).to(device)
        steps = self.left_to_right_steps(len(answers), self.text_options(options), length)
        record["unmask_step"] = steps.to(device)
        return Rollout(ids, self.completion_mask(ids), None, record)

    def gold_completion(self, answers: Sequence[str], length: int) -> torch.Tensor:
        """Answer tokens + EOS, EOS-filled to `length` [N, length]; longer answers keep their first tokens."""
        ids = torch.full((len(answers), length), self.tokens.eos, dtype=torch.long)
        for i, answer in enumerate(answers):
            row = self.tokenizer.encode(answer.strip(), add_special_tokens=False)
            if len(row) > length - 1:
                logger.warning("a gold answer of %d tokens was cut to max_new_tokens=%d", len(row), length)
                row = row[: length - 1]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    @staticmethod
    def left_to_right_steps(rows: int, text: SemiARTextOptions, length: int) -> torch.Tensor:
        """Reveal step [rows, L] of a left-to-right trajectory with the sampler's per-step counts in every block."""
        num_blocks, per_block = text.blocks(length)
        counts = transfer_counts(torch.tensor([text.block_length]), per_block)[0]  # [per_block]
        in_block = torch.repeat_interleave(torch.arange(per_block), counts)  # [block_length]
        steps = torch.cat([in_block + b * per_block for b in range(num_blocks)])  # [L]
        return steps.unsqueeze(0).repeat(rows, 1)

    def answer_logps(self, model: torch.nn.Module, rollout: Rollout, options: AnswerSampling) -> torch.Tensor:
        """Each answer token scored at the state of its decode step (text_steps / step_group forwards)."""
        r, text = rollout.record, self.text_options(options)
        width = r["slots"].shape[1]
        sample = SlotSample.recorded(rollout.completion_ids[:, :width], r["unmask_step"], text.steps)
        logps, _ = trajectory_logps(
            logits_at_slots(model, r["attention_mask"]), self._text_canvas(r), sample, TokenSpace(self.tokens.mask),
            text.scoring(), step_group=options.step_group,
        )  # fmt: skip
        return _fit(logps * rollout.completion_mask[:, :width], rollout.completion_ids.shape[1])

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        return self.processor.decode_answers(completion_ids)
