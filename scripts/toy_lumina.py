"""DEMO ONLY: a tiny Lumina-DiMOO that has learned the toy world of coloured shapes, in the ORIGINAL layout.

The Lumina twin of `scripts/toy_janus.py`, sharing its world, settings, label noise and VQ training:
1. a random tiny Lumina-DiMOO (`lumina_dimoo.tiny`: LLaDA config at toy width, the released 134548-wide vocabulary,
   a BPE tokenizer that knows the world's words) with an aMUSEd-shaped diffusers VQ of 4 levels (8x, not 16x: a
   32 px scene gives 4 x 4 = 16 codes, as the toy Janus-Pro's) and the toy codebook size;
2. the VQ trained by `toy_janus.train_vq` on pixels in Lumina's [0, 1] range; the learnt codebook is stored
   L2-normalised, so diffusers' nearest-code lookup picks the codes the training used;
3. a warm start with Lumina-DiMOO's own masked-diffusion objective (its `train/train.py`: per row a mask ratio
   cos(r pi / 2), r ~ U[0, 1], of the answer or image slots; cross-entropy at the masked slots only), on the
   sequences the backbone builds: caption -> codes (`<uncondition>` for a share of rows) and (image, question) ->
   the letter then EOS, with the same label noise as the toy Janus-Pro, so sampled answers and images hedge;
4. written through `lumina_dimoo.checkpoint.save_original`, so it loads like released weights.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from backbones.interface import AnswerSampling, ImageSampling
from data_tools.toy_world import BACKGROUND
from lumina_dimoo.attention import slot_logits_fn
from lumina_dimoo.backbone import LuminaDiMOOBackbone
from lumina_dimoo.checkpoint import save_original
from lumina_dimoo.processor import PaddedRows, masked_slots
from lumina_dimoo.tiny import TINY_CORPUS, build_tiny_checkpoint, tiny_llada_config, tiny_vq_config
from lumina_dimoo.tokens import UNCONDITION_TEXT
from lumina_dimoo.vq import encode_codes, image_to_pixels, vq_scale
from rewards.reward_toy import toy_geneval
from rewards.reward_understand import accuracy_reward
from scripts.toy_janus import (
    TOY_SYSTEM_PROMPT,
    TOY_UNDERSTANDING_TEMPLATE,
    ToySample,
    ToySettings,
    joint_warm_start,
    make_world,
    summarise,
    train_vq,
    with_pinned_threads,
    world_corpus,
    write_summary,
)

logger = logging.getLogger(__name__)

VQ_LEVELS = 4  # 8x downsampling: 32 px -> 4 x 4 codes
BACKGROUND_01 = torch.tensor(BACKGROUND).view(1, 3, 1, 1) / 255.0  # the VQ's [0, 1] range
GREEDY_TEMPERATURE = 1e-3  # "most likely" images: the MaskGIT sampler needs tau > 0; this one is near-argmax


@dataclass(frozen=True)
class ToyLuminaSettings(ToySettings):
    """The toy Janus-Pro's settings plus the masked-diffusion decode and the diffusers VQ width; `key()` names a build.

    `answer_tokens`, `text_steps` and `image_steps` must equal the demo recipe's (configs/recipes/
    lumina_dimoo_toy_cpu.yaml: max_completion_length, text_steps, image_steps): the warm start and the summary use
    the sequences and decode steps RL samples with."""

    lm_steps: int = 600  # each step costs more than the toy Janus-Pro's (the 134548-wide answer head)
    # One intra-op thread: as deterministic as two, and on a shared 2-core machine (the demo's case) two threads
    # wait on each other (the toy Janus-Pro keeps 2 so its cached builds stay valid).
    threads: int = 1
    vq_width: int = 16
    answer_tokens: int = 4
    text_steps: int = 2
    image_steps: int = 4


def toy_llada_config(settings: ToyLuminaSettings) -> dict:
    """LLaDA config.json at the toy width; generated images of `image_size` px."""
    hidden = settings.hidden_size
    return tiny_llada_config() | {
        "d_model": hidden,
        "mlp_hidden_size": 2 * hidden,
        "n_layers": settings.num_layers,
        "pairuni_image_size": settings.image_size,
    }


def toy_vq_config(settings: ToyLuminaSettings) -> dict:
    """aMUSEd's VQ blocks, 4 levels of `vq_width` channels, the toy codebook."""
    return tiny_vq_config() | {
        "down_block_types": ["DownEncoderBlock2D"] * VQ_LEVELS,
        "up_block_types": ["UpDecoderBlock2D"] * VQ_LEVELS,
        "block_out_channels": [settings.vq_width] * VQ_LEVELS,
        "latent_channels": 8,
        "norm_num_groups": 8,
        "num_vq_embeddings": settings.codebook_size,
    }


def world_pixels(world: list[ToySample], scale: int, size: int) -> torch.Tensor:
    """Scenes -> [N, 3, H, W] in [0, 1], through the backbone's own image path (so RL sees the same codes)."""
    return torch.stack([image_to_pixels(s.image, scale, max_pixels=size * size) for s in world])


@torch.no_grad()
def normalise_codebook(vq: torch.nn.Module) -> None:
    """Store the codebook as `train_vq` uses it (unit rows): the nearest unit code is then the cosine-closest."""
    weight = vq.quantize.embedding.weight
    weight.copy_(F.normalize(weight, dim=1))


# ---------------------------------------------------------------------------------------------------------------------
# Masked-diffusion warm start
# ---------------------------------------------------------------------------------------------------------------------


def mask_slots(rows: int, slots: int, generator: torch.Generator) -> torch.Tensor:
    """[rows, slots] bool: per row ceil(cos(r pi / 2) * slots) random slots, r ~ U[0, 1] (Lumina's SFT schedule)."""
    ratio = torch.cos(torch.rand(rows, 1, generator=generator) * math.pi / 2)  # [rows, 1]
    count = (ratio * slots).ceil().clamp(1, slots)
    rank = torch.rand(rows, slots, generator=generator).argsort(dim=1).argsort(dim=1)  # a random order per row
    return rank < count


def masked_loss(model, rows: PaddedRows, slots, targets, masked, mask_id: int, space=None) -> torch.Tensor:
    """Mean CE of `targets` [B, S] (vocabulary ids) at the `masked` [B, S] ones of `slots`, all masked at once;
    `space` restricts image slots to the codebook logits the sampler reads (None: the whole vocabulary)."""
    ids = rows.input_ids.scatter(1, slots, torch.where(masked, mask_id, targets))  # [B, L]
    if space is None:
        return F.cross_entropy(slot_logits_fn(model, rows.attention_mask)(ids, slots)[masked], targets[masked])
    # Only the head rows of the codebook: the same logits `in_space` slices from the full head, 1000x cheaper here.
    head_rows = slice(space.offset, space.offset + space.size)
    logits = slot_logits_fn(model, rows.attention_mask, head_rows)(ids, slots)  # [B, S, K]
    return F.cross_entropy(logits[masked], (targets - space.offset)[masked])


def understanding_loss(backbone, model, samples, image_codes, answers, settings, generator) -> torch.Tensor:
    """Answer slots (letter + EOS fill) partly masked and rebuilt, given the question and the scene's codes [B, h, w]."""
    questions = [TOY_UNDERSTANDING_TEMPLATE.format(question=s.question) for s in samples]
    length = settings.answer_tokens
    rows = backbone.processor.encode_understanding(questions, list(image_codes), length, TOY_SYSTEM_PROMPT)
    slots = rows.span_start.unsqueeze(1) + torch.arange(length)  # [B, L]
    targets = backbone.gold_completion(answers, length)  # [B, L]
    masked = mask_slots(len(samples), length, generator)
    return masked_loss(model, rows, slots, targets, masked, backbone.tokens.mask)


def generation_loss(backbone, model, samples, codes, drop, generator) -> torch.Tensor:
    """Image slots partly masked and rebuilt from the caption (or `<uncondition>` where `drop`); codes [B, h*w]."""
    prompts = [UNCONDITION_TEXT if d else s.prompt for s, d in zip(samples, drop.tolist(), strict=True)]
    rows = backbone.processor.encode_generation(prompts).cond
    slots = masked_slots(rows.input_ids, backbone.tokens.mask)  # [B, h*w]
    targets = codes + backbone.tokens.image_offset
    masked = mask_slots(len(samples), slots.shape[1], generator)
    return masked_loss(model, rows, slots, targets, masked, backbone.tokens.mask, backbone.image_space)


def warm_start(backbone, model, world, codes: torch.Tensor, settings: ToyLuminaSettings) -> None:
    """Joint masked-diffusion steps on both tasks with the toy Janus-Pro's label noise; the VQ stays fixed (the
    mask draws come from the loop's generator, after the targets')."""

    def losses(idx, samples, drop, answers, targets, generator):
        grid = codes[idx].view(len(samples), *backbone.processor.image_grid)  # the scenes' own codes [B, h, w]
        und = understanding_loss(backbone, model, samples, grid, answers, settings, generator)
        return und, generation_loss(backbone, model, samples, targets, drop, generator)

    params = [p for n, p in model.named_parameters() if not n.startswith("vqvae.")]
    joint_warm_start(model, params, world, codes, settings, losses, "masked answer ce %.3f, masked image ce %.3f")


@torch.no_grad()
def evaluate(backbone, model, samples, settings: ToyLuminaSettings, greedy: bool = False, seed: int = 0) -> dict:
    """Accuracy and toy_geneval on `samples` with the recipe's decode steps, sampled at temperature 1 or greedy."""
    torch.manual_seed(seed)
    answer_options = AnswerSampling(
        max_new_tokens=settings.answer_tokens, steps=settings.text_steps, do_sample=not greedy,
        system_prompt=TOY_SYSTEM_PROMPT,
    )  # fmt: skip
    questions = [TOY_UNDERSTANDING_TEMPLATE.format(question=s.question) for s in samples]
    answers = backbone.sample_answers(model, questions, [s.image for s in samples], answer_options)
    texts = backbone.decode_answers(answers.completion_ids)
    accuracy = accuracy_reward([s.question for s in samples], texts, answer=[s.answer for s in samples])
    tau = GREEDY_TEMPERATURE if greedy else 1.0
    image_options = ImageSampling(cfg_weight=0.0, temperature=tau, steps=settings.image_steps)
    prompts = [s.prompt for s in samples]
    pixels = backbone.sample_images(model, prompts, image_options).pixels  # [N, 3, H, W] in [-1, 1]
    reward = toy_geneval(prompts, [""] * len(prompts), images=pixels)
    return {"accuracy": sum(accuracy) / len(accuracy), "toy_geneval": sum(reward) / len(reward)}


def build_toy_lumina(out_dir: str | Path, settings: ToyLuminaSettings | None = None) -> dict:
    """Build the toy Lumina-DiMOO into `out_dir` (original layout + `toy_settings.json`); returns the summary."""
    return with_pinned_threads(_build, Path(out_dir), settings or ToyLuminaSettings())


def _build(out_dir: Path, settings: ToyLuminaSettings) -> dict:
    start = time.monotonic()
    torch.manual_seed(settings.seed)
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_checkpoint(
            tmp, settings.seed, toy_llada_config(settings), toy_vq_config(settings), world_corpus(TINY_CORPUS)
        )
        backbone, model = LuminaDiMOOBackbone.load(tmp)
    world = make_world(settings.num_scenes, settings.seed, settings.image_size)
    pixels = world_pixels(world, vq_scale(model.vqvae), settings.image_size)
    generator = torch.Generator().manual_seed(settings.seed)
    vq_mse = train_vq(model.vqvae, pixels, settings, generator, background=BACKGROUND_01)
    normalise_codebook(model.vqvae)
    codes = encode_codes(model.vqvae.eval(), pixels).flatten(1)  # [N, h*w]
    warm_start(backbone, model, world, codes, settings)
    held_out = make_world(settings.eval_scenes, settings.seed + 1000, settings.image_size)
    summary = summarise(settings, vq_mse, codes, partial(evaluate, backbone, model, held_out, settings), start)
    out = save_original(model, backbone.tokenizer, out_dir)
    return write_summary(out, summary, "toy Lumina-DiMOO")
