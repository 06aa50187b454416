"""Show-o behind the backbone interface (`backbones.interface.Backbone`): AR answers, masked-diffusion images.

Answers are sampled token by token under Show-o's MMU mask with a KV cache, always `max_new_tokens` steps (no early
stop, so every ZeRO-3 rank runs the same forwards), and rescored by one forward over prompt + answer. Images come
from Show-o's MaskGIT schedule with CFG (`backbones.maskgit_sampler`, "showo") over the omni-attention t2i sequence;
the loss rescores each code at the state of its decode step (`backbones.masked_diffusion.trajectory_logps`), from
the reveal order kept in `Rollout.record`. Understanding reads MAGVIT-v2 codes, so a row about its own generated
image reads that image's codes directly (no decode-encode round trip).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF
from transformers import DynamicCache

from backbones.interface import AnswerSampling, GeneratedImages, ImageSampling, Rollout
from backbones.masked_diffusion import (
    Canvas,
    GeneratorArg,
    SlotSample,
    TokenSpace,
    image_rollout,
    row_generators,
    trajectory_logps,
)
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from showo.checkpoint import load_pretrained, save_original
from showo.sampling import image_canvas, image_space, omni_logits_fn, top_k_filter
from showo.tokens import (
    MMU_QUESTION_TEMPLATE,
    ShowoVocab,
    mmu_attention_mask,
    mmu_ids,
    position_ids,
    t2i_ids,
)

logger = logging.getLogger(__name__)

# Trainable-module groups, by submodule names of `showo.checkpoint.ShowoModel`.
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "language_model": ("showo",),  # the Phi body and its one head (text and image logits alike)
    "text_head": ("showo.lm_head",),
    "vq_model": ("vq_model",),
}
DEFAULT_IMAGE_STEPS = 50  # Show-o 512 px README and UniRL's GenEval script (w 5, T 50)
DEFAULT_MAX_SEQ_LENGTH = 128  # t2i text width of Show-o's demo configs (UniRL's GenEval script uses 64)
ANSWER_VOCABS = ("text", "full")
_PLACEHOLDER = Image.new("RGB", (16, 16), (128, 128, 128))  # rows without an image file (same encode on every rank)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def understanding_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """Show-o's `image_transform`: bicubic resize of the short side, centre crop, [-1, 1] -> [3, size, size]."""
    image = TF.center_crop(TF.resize(image.convert("RGB"), size, InterpolationMode.BICUBIC), [size, size])
    return TF.normalize(TF.to_tensor(image), [0.5] * 3, [0.5] * 3)


@dataclass(frozen=True)
class ShowoLayout:
    """What the sequences need from the checkpoint: ids, the image grid and the t2i text width."""

    vocab: ShowoVocab
    grid: tuple[int, int]
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH

    @property
    def num_image_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


def _sample_tokens(logits: torch.Tensor, options: AnswerSampling, generator: GeneratorArg) -> torch.Tensor:
    """One token per row of temperature-scaled logits [N, V]: greedy, or a draw (top-k filtered) per row."""
    if not options.do_sample:
        return logits.argmax(-1)
    probs = top_k_filter(logits, options.top_k or None).softmax(-1)
    per_row = row_generators(generator, logits.shape[0])
    if per_row is None:
        return torch.multinomial(probs, 1, generator=generator)[:, 0]
    return torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, per_row)])


class ShowoBackbone:
    """Show-o (showlab/show-o, show-o-512x512, and the tiny layout) on transformers' `PhiForCausalLM`.

    `answer_vocab`: "text" (default) samples and scores answers over the Phi text logits only, "full" over the
    whole head as the original `mmu_generate` does (image codes and Show-o's special tokens included; for parity).
    `image_steps`: MaskGIT steps when the options give none (callers without an `image_steps` field, e.g. SFT).
    """

    name: ClassVar[str] = "showo"
    module_groups: ClassVar[dict[str, tuple[str, ...]]] = MODULE_GROUPS

    def __init__(
        self, tokenizer, layout: ShowoLayout, answer_vocab: str = "text", image_steps: int = DEFAULT_IMAGE_STEPS
    ):
        if answer_vocab not in ANSWER_VOCABS:
            raise ValueError(f"answer_vocab={answer_vocab!r} is not supported; use one of {ANSWER_VOCABS}.")
        self.tokenizer = tokenizer
        self.layout = layout
        self.answer_vocab = answer_vocab
        self.image_steps = image_steps

    @classmethod
    def load(cls, path, dtype=None, device=None) -> tuple[ShowoBackbone, torch.nn.Module]:
        model, tokenizer, vocab = load_pretrained(path, dtype=dtype, device=device)
        raw = model.config.showo
        side = int(round(raw["num_vq_tokens"] ** 0.5))
        if side * side != raw["num_vq_tokens"]:
            raise ValueError(
                f"{Path(path) / 'config.json'}: num_vq_tokens={raw['num_vq_tokens']} is not a square grid; Show-o "
                "generates square images (256 or 1024 tokens)."
            )
        width = int(raw.get("pairuni_max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
        return cls(tokenizer, ShowoLayout(vocab, (side, side), width)), model

    def save(self, model: torch.nn.Module, out_dir: str | Path, state_dict: dict | None = None) -> None:
        # The original layout is also the training save format: one loader for both.
        save_original(model, self.tokenizer, out_dir, state_dict=state_dict)

    def export_original(self, model: torch.nn.Module, out_dir: str | Path) -> None:
        save_original(model, self.tokenizer, out_dir)

    @property
    def vocab(self) -> ShowoVocab:
        return self.layout.vocab

    @property
    def pad_id(self) -> int:
        return self.vocab.pad_id

    # ------------------------------------------------------------------ images

    @property
    def image_space(self) -> TokenSpace:
        return image_space(self.vocab)

    def maskgit_options(self, options: ImageSampling) -> MaskGitOptions:
        steps = options.steps or self.image_steps
        return MaskGitOptions(steps, "showo", cfg_weight=options.cfg_weight, temperature=options.temperature)

    def _text_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.tokenizer.encode(text, add_special_tokens=False) for text in texts]

    def generation_record(self, prompts: Sequence[str], device: torch.device) -> dict[str, torch.Tensor]:
        """The t2i rows with every code masked (cond and the empty-text CFG row, same layout) and the code slots."""
        n, count = len(prompts), self.layout.num_image_tokens
        masks = torch.full((n, count), self.vocab.mask_id)
        cond = t2i_ids(self.vocab, self._text_ids(prompts), self.layout.max_seq_length, masks)  # [N, L]
        uncond = t2i_ids(self.vocab, [[]] * n, self.layout.max_seq_length, masks)  # [N, L]
        canvas = image_canvas(self.vocab, cond.to(device), uncond.to(device))
        return {
            "input_ids": canvas.ids,
            "slots": canvas.slots,
            "uncond_input_ids": canvas.uncond_ids,
            "uncond_slots": canvas.uncond_slots,
        }

    def sample_images(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        options: ImageSampling,
        generator: GeneratorArg = None,
        decode: bool = True,
    ) -> GeneratedImages:
        if options.top_k is not None:
            raise ValueError(f"image_top_k={options.top_k}: Show-o's MaskGIT sampler has no top-k; use None.")
        record = self.generation_record(prompts, _device(model))
        sample = sample_maskgit(
            omni_logits_fn(model, self.vocab), Canvas.from_record(record), self.image_space,
            self.maskgit_options(options), generator=generator,
        )  # fmt: skip
        return image_rollout(sample, record, options, self.decode_images(model, sample.tokens) if decode else None)

    def image_logps(self, model: torch.nn.Module, rollout: Rollout, options: ImageSampling) -> torch.Tensor:
        """Each code scored at the state of its decode step: ceil(steps / step_group) forwards, x2 with CFG.

        Show-o's schedule reveals a fixed number of codes per step (it depends on the grid and the steps only), so
        the number of forwards is the same on every ZeRO-3 rank."""
        r, maskgit = rollout.record, self.maskgit_options(options)
        codes = rollout.completion_ids[:, : r["slots"].shape[1]]
        sample = SlotSample.recorded(codes, r["unmask_step"], maskgit.steps)
        logps, _ = trajectory_logps(
            omni_logits_fn(model, self.vocab), Canvas.from_record(r), sample, self.image_space,
            maskgit.scoring(conditional=options.logprob == "conditional"), step_group=options.step_group,
        )  # fmt: skip
        return torch.nn.functional.pad(logps, (0, rollout.completion_ids.shape[1] - logps.shape[1]))

    @torch.no_grad()
    def decode_images(self, model: torch.nn.Module, completion_ids: torch.Tensor) -> torch.Tensor:
        codes = completion_ids[:, : self.layout.num_image_tokens]
        return model.vq_model.decode(codes, self.layout.grid).float().clamp(-1, 1)  # [N, 3, H, W]

    # ------------------------------------------------------------------ answers

    @property
    def image_size(self) -> int:
        """Side of understanding images in pixels (the generation grid; MAGVIT-v2 downsamples 16x)."""
        return self.layout.grid[0] * 16

    @torch.no_grad()
    def understanding_codes(
        self,
        model: torch.nn.Module,
        images: Sequence[Image.Image | None],
        generated: GeneratedImages | None,
        own_image: torch.Tensor | None,
    ) -> torch.Tensor:
        """MAGVIT-v2 codes [N, I] of each row's image: one batched encode of every row (a placeholder where a row
        has no file, so every rank runs the same encode); rows flagged `own_image` take their generated codes."""
        own = own_image.to(_device(model)) if own_image is not None else None
        if own is not None and bool(own.any()) and generated is None:
            raise ValueError("rows ask about their generated image but no image was generated before the answers.")
        pixels = torch.stack([understanding_pixels(image or _PLACEHOLDER, self.image_size) for image in images])
        codes = model.vq_model.encode(pixels.to(_device(model), next(model.vq_model.parameters()).dtype))  # [N, I]
        if own is None or not bool(own.any()):
            return codes
        mine = generated.rollout.completion_ids[:, : self.layout.num_image_tokens].to(codes.device)
        return torch.where(own[:, None], mine, codes)

    def _question_ids(self, questions: Sequence[str], options: AnswerSampling) -> list[list[int]]:
        if options.system_prompt is not None:
            raise ValueError(
                f"understanding_system_prompt={options.system_prompt!r}: Show-o's MMU template "
                f"({MMU_QUESTION_TEMPLATE!r}) has no system prompt; leave it unset."
            )
        return self._text_ids([MMU_QUESTION_TEMPLATE.format(question=q) for q in questions])

    def understanding_record(self, codes: torch.Tensor, questions, options: AnswerSampling) -> dict[str, torch.Tensor]:
        """Left-padded MMU prompts `<|mmu|> <|soi|> codes <|eoi|> <sot> USER: ... ASSISTANT:` [N, T] and their
        padding mask."""
        ids = mmu_ids(self.vocab, codes + self.vocab.image_offset, self._question_ids(questions, options))
        ids = ids.to(codes.device)
        return {"input_ids": ids, "attention_mask": (ids != self.vocab.pad_id).long()}

    @property
    def _answer_width(self) -> int | None:
        """Logits an answer token is drawn from: the Phi text vocabulary, or (None) the whole head."""
        return self.vocab.llm_vocab_size if self.answer_vocab == "text" else None

    def _answer_logits(self, model: torch.nn.Module, hidden: torch.Tensor, temperature: float) -> torch.Tensor:
        return model.showo.lm_head(hidden)[..., : self._answer_width].float() / temperature

    def _stopped_mask(self, completion_ids: torch.Tensor) -> torch.Tensor:
        """1 up to and including the first EOS, 0 after."""
        eos = (completion_ids == self.vocab.eos_id).long()
        return ((eos.cumsum(1) - eos) == 0).long()

    @torch.no_grad()
    def _decode_answers(
        self, model: torch.nn.Module, record: dict[str, torch.Tensor], options: AnswerSampling, generator: GeneratorArg
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """KV-cached decode of `max_new_tokens` tokens per row: (ids [N, L] pad after EOS, logps [N, L])."""
        body = model.showo.model
        if body.gradient_checkpointing and body.training:
            # transformers' checkpointed layers drop the KV cache in training mode: every step would see itself only.
            raise ValueError(
                "sample_answers: the model trains with gradient checkpointing, which disables the KV cache; sample "
                "inside trl's unwrap_model_for_generation (the trainers do) or after model.eval()."
            )
        ids, real = record["input_ids"], record["attention_mask"].bool()  # [N, T]
        cache = DynamicCache(config=model.showo.config)
        out = body(
            input_ids=ids, attention_mask=mmu_attention_mask(ids, self.vocab),
            position_ids=position_ids(ids, self.vocab), past_key_values=cache, use_cache=True,
        )  # fmt: skip
        hidden, next_position = out.last_hidden_state[:, -1:], real.sum(1, keepdim=True)  # [N, 1, D], [N, 1]
        tokens, logps = [], []
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        for step in range(options.max_new_tokens):
            logits = self._answer_logits(model, hidden[:, 0], options.temperature)  # [N, V']
            token = _sample_tokens(logits, options, generator)
            logps.append(logits.log_softmax(-1).gather(-1, token[:, None])[:, 0].masked_fill(finished, 0.0))
            token = token.masked_fill(finished, self.pad_id)
            tokens.append(token)
            finished = finished | (token == self.vocab.eos_id)
            if step == options.max_new_tokens - 1:
                break
            keys = torch.cat([real, real.new_ones(ids.shape[0], step + 1)], dim=1)[:, None, None, :]  # [N,1,1,T+s+1]
            hidden = body(
                input_ids=token[:, None], attention_mask=keys, position_ids=next_position + step,
                past_key_values=cache, use_cache=True,
            ).last_hidden_state  # fmt: skip
        return torch.stack(tokens, dim=1), torch.stack(logps, dim=1)

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
        """One answer per row; `generator` may be one per row (tokens then independent of the batch). top_p is not
        part of Show-o's sampler and must stay 1."""
        if options.top_p < 1:
            raise ValueError(f"top_p={options.top_p}: Show-o's answer sampler has top-k only; set top_p to 1.0.")
        codes = self.understanding_codes(model, images, generated, own_image)
        record = self.understanding_record(codes, questions, options)
        completion_ids, logps = self._decode_answers(model, record, options, generator)
        mask = self._stopped_mask(completion_ids)
        return Rollout(completion_ids, mask, logps * mask, record)

    def answer_rollout(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        answers: Sequence[str],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
    ) -> Rollout:
        """Gold answers (`" answer"` + EOS) after each row's MMU prompt. Only rows about their own generated image
        (UniRL SFT): encoding a file needs the model's MAGVIT-v2, which this call does not get."""
        if any(image is not None for image in images) or generated is None or own_image is None:
            raise ValueError(
                "showo answer_rollout: image files need the model's MAGVIT-v2 encoder; pass rows about their own "
                "generated image (images None, own_image True, generated set), or score sampled answers instead."
            )
        if not bool(own_image.all()):
            raise ValueError("showo answer_rollout: every row needs own_image=True (images are all None).")
        codes = generated.rollout.completion_ids[:, : self.layout.num_image_tokens]
        record = self.understanding_record(codes, questions, options)
        ids, mask = self.gold_completion(answers)
        return Rollout(ids.to(codes.device), mask.to(codes.device), None, record)

    def gold_completion(self, answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gold answers as completions of `... ASSISTANT:`: ids/mask [N, L], right-padded, each ending with EOS."""
        rows = [self._text_ids([" " + a.strip()])[0] + [self.vocab.eos_id] for a in answers]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        return ids, mask

    def answer_logps(self, model: torch.nn.Module, rollout: Rollout, options: AnswerSampling) -> torch.Tensor:
        """One forward over prompt + answer under the MMU mask; log-probs at the sampling temperature [N, L]."""
        prompt, completion = rollout.record["input_ids"], rollout.completion_ids
        # The mask and positions come from the layout, not the sampled ids (an answer token equal to [PAD] or
        # <|eoi|> must not change what the prompt sees): answers are causal text, written as EOS for the mask.
        layout_ids = torch.cat([prompt, torch.full_like(completion, self.vocab.eos_id)], dim=1)  # [N, T + L]
        hidden = model.showo.model(
            input_ids=torch.cat([prompt, completion], dim=1),
            attention_mask=mmu_attention_mask(layout_ids, self.vocab),
            position_ids=position_ids(layout_ids, self.vocab), use_cache=False,
        ).last_hidden_state  # fmt: skip
        start = prompt.shape[1] - 1  # the hidden state before answer token j predicts it
        logits = self._answer_logits(model, hidden[:, start : start + completion.shape[1]], options.temperature)
        targets = completion.clamp(max=logits.shape[-1] - 1)  # pads past the text vocabulary are masked below
        logps = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)  # [N, L]
        return logps * rollout.completion_mask

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        """Text up to the first EOS; Show-o's special tokens, image codes and pads dropped."""
        keep = self._stopped_mask(completion_ids).bool() & (completion_ids < self.vocab.llm_vocab_size)
        keep &= completion_ids != self.vocab.eos_id
        return [self.tokenizer.decode(row[m].tolist()) for row, m in zip(completion_ids, keep, strict=True)]


__all__ = ["MODULE_GROUPS", "ShowoBackbone", "ShowoLayout", "understanding_pixels"]
