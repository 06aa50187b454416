"""Janus-Pro on top of transformers' `JanusForConditionalGeneration`: loading, prompts, rollouts, log-probs.

The layers themselves are transformers'; this package is the Janus-Pro delta (both checkpoint formats, templates,
batched CFG sampling, per-token log-probs, VQ decoding, export back to the original layout).
"""

from janus.checkpoint import export_original, load_pretrained, save_pretrained
from janus.decode import decode_image_tokens, to_pil
from janus.logprobs import answer_token_logps, image_token_logps
from janus.processor import (
    DEFAULT_SYSTEM_PROMPT,
    GenerationBatch,
    JanusProcessor,
    SpecialTokens,
    UnderstandingBatch,
)
from janus.sampling import AnswerSamples, ImageSamples, image_seed, sample_answer_tokens, sample_image_tokens
from janus.tiny import build_tiny_checkpoint

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "AnswerSamples",
    "GenerationBatch",
    "ImageSamples",
    "JanusProcessor",
    "SpecialTokens",
    "UnderstandingBatch",
    "answer_token_logps",
    "build_tiny_checkpoint",
    "decode_image_tokens",
    "export_original",
    "image_seed",
    "image_token_logps",
    "load_pretrained",
    "sample_answer_tokens",
    "sample_image_tokens",
    "save_pretrained",
    "to_pil",
]
