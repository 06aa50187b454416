"""HPS v2.1 image reward (PairUni's generation reward, paper §3.2), offline and batched.

The `hpsv2` pip package is deliberately not used (docs/method.md): it downloads 3.9 GB of LAION
weights only to overwrite them, fetches the checkpoint from the hub, misses the tokenizer vocabulary in
its wheel, pins pytest/protobuf versions that conflict with this stack, and reloads the checkpoint on
every `score()` call. Here the open_clip `ViT-H-14` architecture (key-for-key what HPS trained) is built
with `pretrained=None`, `HPS_v2.1_compressed.pt` is loaded once from a local path, and images are scored
in batches straight from decoded tensors in [-1, 1] (no PIL round trip).

Score = cosine similarity of the L2-normalised image and text features (no logit scale), as HPS defines
it. HPS scores are comparable only within one prompt, which is all GRPO's per-group advantages need.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image

__all__ = [
    "HPS_FILENAME",
    "HPS_HUB_REPO",
    "HPS_PRECISIONS",
    "HPSv21Scorer",
    "hps_preprocess",
    "load_hps_state_dict",
    "outside_zero_init",
    "pil_to_tensor",
]

logger = logging.getLogger(__name__)

HPS_HUB_REPO = "xswu/HPSv2"
HPS_FILENAME = "HPS_v2.1_compressed.pt"
HPS_PRECISIONS = ("fp32", "bf16", "tf32")

ImagesInput = torch.Tensor | Sequence[Image.Image | torch.Tensor]


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a float32 [3, H, W] tensor in [-1, 1] (RGB), the same range Janus decodes to."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)  # [H, W, 3] in [0, 255]
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def hps_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """HPS v2.1 validation transform on tensors: [N,3,H,W] in [-1,1] -> [N,3,size,size], CLIP-normalised float32.

    The letterbox of HPSv2's `ResizeMaxSize(size)` after `ToTensor`: the longer side becomes `size` (the shorter
    one `round(dim * size / longer)`), bicubic with antialiasing on the float pixels (no uint8 rounding or
    clamping: the resize runs after ToTensor), then zero padding (black, before normalisation) split as
    left/top = pad // 2, right/bottom = the rest; then `Normalize(OPENAI mean/std)`. Not short-side resize +
    centre crop: on non-square images that would cut off content HPS saw. Square images are only resized.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected [N, 3, H, W] in [-1, 1], got shape {tuple(images.shape)}")
    pixels = (images.float() + 1.0) / 2.0  # [N, 3, H, W] in [0, 1]
    height, width = pixels.shape[-2:]
    scale = size / max(height, width)
    new_size = (round(height * scale), round(width * scale))
    if new_size != (height, width):
        pixels = F.interpolate(pixels, size=new_size, mode="bicubic", align_corners=False, antialias=True)
    pad_h, pad_w = size - new_size[0], size - new_size[1]
    pixels = F.pad(pixels, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))  # [N, 3, size, size]
    mean = torch.tensor(OPENAI_DATASET_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def load_hps_state_dict(checkpoint_path: str | Path) -> dict[str, torch.Tensor]:
    """Read an HPS checkpoint (`{"state_dict": ...}` or a bare state dict) with any `module.` prefixes removed."""
    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"HPS v2.1 checkpoint not found: {path}. Download {HPS_FILENAME} from the Hugging Face hub repo "
            f"{HPS_HUB_REPO} (e.g. `huggingface-cli download {HPS_HUB_REPO} {HPS_FILENAME} --local-dir <dir>`) "
            "and pass its local path; nothing is downloaded at run time."
        )
    # weights_only: the checkpoint holds tensors and plain values only; never unpickle arbitrary objects.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f"checkpoint_path: {path} holds no state dict (expected a dict, or one under 'state_dict')")
    # Checkpoints saved from DistributedDataParallel prefix every key with "module.".
    return {key.removeprefix("module."): value for key, value in state_dict.items()}


@contextlib.contextmanager
def outside_zero_init() -> Iterator[None]:
    """Suspend an active DeepSpeed ZeRO-3 `zero.Init` context while the body builds a model.

    Modules built inside `zero.Init` get partitioned parameters (shape [0] on every rank), which breaks a
    frozen reward model that each rank runs whole. `zero.Init(enabled=False)` does not help
    when nested in an active context, so this unpatches module construction through DeepSpeed's own
    `shutdown_init_context` / `restore_init_context` pair (DeepSpeed 0.19). If DeepSpeed was never
    imported no context can be active and nothing happens.
    """
    partition = sys.modules.get("deepspeed.runtime.zero.partition_parameters")
    if partition is None or getattr(partition, "top_level_context", None) is None:
        yield
        return
    logger.info("Building the reward model outside the active DeepSpeed zero.Init context")
    partition.shutdown_init_context()
    try:
        yield
    finally:
        partition.restore_init_context()


class HPSv21Scorer:
    """HPS v2.1 reward model: open_clip `model_name` + an HPS checkpoint from a local path, frozen, eval.

    Args:
        checkpoint_path: local path of `HPS_v2.1_compressed.pt` (hub repo `xswu/HPSv2`).
        device, dtype: where and in which precision the model runs; inputs are moved there, and
            scores come back as float32 on the device of the input tensors (CPU for PIL images).
        model_name: an open_clip architecture name (tests register tiny configs with
            `open_clip.add_model_config`); the preprocessing size comes from its vision config.
        batch_size: images (and prompts) per forward pass.
        precision: matmul precision of the forward passes, weights kept in `dtype`: "fp32"; "bf16" (autocast:
            matmuls in bfloat16, normalisations and softmax in float32; scores within 1e-2 of fp32, about
            twice as fast on GPUs); "tf32" (CUDA TF32 matmuls; the same as fp32 on CPU).

    Build it once per rank, before the DeepSpeed engine; it is built outside any active `zero.Init` anyway
    and raises if its parameters end up partitioned.
    """

    def __init__(
        self,
        checkpoint_path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        model_name: str = "ViT-H-14",
        batch_size: int = 16,
        precision: str = "fp32",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        if precision not in HPS_PRECISIONS:
            raise ValueError(f"precision: {precision!r} is unknown; use one of {HPS_PRECISIONS}")
        self.precision = precision
        # zero.Init patches tensor constructors, which breaks torch.load and model building alike.
        with outside_zero_init():
            model = _build_hps_model(checkpoint_path, model_name)
            self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        _check_not_partitioned(self.model)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        image_size = self.model.visual.image_size
        self.image_size = int(image_size[0] if isinstance(image_size, tuple | list) else image_size)
        logger.info("Loaded HPS v2.1 scorer %s from %s (%s, %s)", model_name, checkpoint_path, device, dtype)

    def to(self, device: str | torch.device) -> HPSv21Scorer:
        """Move the model to `device` (e.g. each rank's accelerator) and return self."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def preprocess(self, images: ImagesInput) -> torch.Tensor:
        """Images -> [N, 3, S, S] CLIP-normalised float32 on the scorer's device (S = the model's image size)."""
        if isinstance(images, torch.Tensor):
            return hps_preprocess(images.to(self.device), self.image_size)
        tensors = [pil_to_tensor(im) if isinstance(im, Image.Image) else im for im in images]
        if not all(isinstance(t, torch.Tensor) and t.ndim == 3 for t in tensors):
            raise ValueError("images: expected a [N,3,H,W] tensor or a list of PIL images / [3,H,W] tensors")
        # PIL images may differ in size: preprocess each, then stack the equal-size results.
        return torch.cat([hps_preprocess(t.unsqueeze(0).to(self.device), self.image_size) for t in tensors])

    @torch.no_grad()
    def score(self, images: ImagesInput, prompts: Sequence[str]) -> torch.Tensor:
        """HPS v2.1 score of each (image, prompt) pair: [N] float32.

        `no_grad`, not `inference_mode`: the scores feed advantages that are multiplied into a loss with grad.
        """
        if len(images) != len(prompts):
            raise ValueError(f"prompts: got {len(prompts)} prompts for {len(images)} images; pass one per image")
        out_device = images.device if isinstance(images, torch.Tensor) else torch.device("cpu")
        if len(prompts) == 0:
            return torch.zeros(0, device=out_device)
        # GRPO scores G images per prompt: encode each distinct prompt once, then index its features per row.
        unique = list(dict.fromkeys(prompts))
        text_features = self._encode_texts(unique)  # [U, D]
        row_text = text_features[torch.tensor([unique.index(p) for p in prompts], device=self.device)]  # [N, D]
        scores = []
        for start in range(0, len(prompts), self.batch_size):
            stop = start + self.batch_size
            pixels = self.preprocess(images[start:stop]).to(self.dtype)  # [b, 3, S, S]
            with self._matmul_precision():
                image_features = F.normalize(self.model.encode_image(pixels).float(), dim=-1)  # [b, D]
            scores.append((image_features * row_text[start:stop]).sum(dim=-1))  # [b]
        return torch.cat(scores).to(out_device)

    def _encode_texts(self, prompts: list[str]) -> torch.Tensor:
        """L2-normalised text features of `prompts`, batched: [len(prompts), D] float32."""
        features = []
        for start in range(0, len(prompts), self.batch_size):
            tokens = self.tokenizer(prompts[start : start + self.batch_size]).to(self.device)  # [b, context_length]
            with self._matmul_precision():
                features.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1))  # [b, D]
        return torch.cat(features)

    @contextlib.contextmanager
    def _matmul_precision(self) -> Iterator[None]:
        """The forward's precision context (see `precision`); TF32 is switched on for the forward only."""
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                yield
            return
        if self.precision == "tf32" and self.device.type == "cuda":
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32 = previous
            return
        yield


def _build_hps_model(checkpoint_path: str | Path, model_name: str) -> torch.nn.Module:
    """open_clip `model_name` holding the HPS checkpoint's weights (strict key match)."""
    from transformers.initialization import no_init_weights

    state_dict = load_hps_state_dict(checkpoint_path)
    # Random init is skipped (ViT-H-14 on CPU: ~27 s -> ~2 s): the strict key check below guarantees the
    # checkpoint overwrites every parameter; non-persistent buffers (the causal mask) are still computed.
    with no_init_weights(), _drop_root_log("initialized randomly"):
        model = open_clip.create_model(model_name, pretrained=None, precision="fp32", device="cpu")
    incompatible = model.load_state_dict(state_dict, strict=False)
    if incompatible.missing_keys or incompatible.unexpected_keys:
        raise ValueError(
            f"checkpoint_path: {checkpoint_path} does not fit open_clip {model_name!r}: missing keys "
            f"{incompatible.missing_keys[:5]}, unexpected keys {incompatible.unexpected_keys[:5]}; "
            f"pass the model_name the checkpoint was trained with ({HPS_FILENAME} is ViT-H-14)"
        )
    return model


@contextlib.contextmanager
def _drop_root_log(fragment: str) -> Iterator[None]:
    """Drop root-logger records containing `fragment` (open_clip warns "initialized randomly" before we load HPS)."""

    def keep(record: logging.LogRecord) -> bool:
        return fragment not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _check_not_partitioned(model: torch.nn.Module) -> None:
    """Raise if DeepSpeed ZeRO-3 partitioned the model (its parameters carry `ds_id` and hold no data)."""
    partitioned = [name for name, p in model.named_parameters() if hasattr(p, "ds_id") or p.numel() == 0]
    if partitioned:
        raise RuntimeError(
            f"HPS scorer parameters are partitioned by DeepSpeed ZeRO-3 (e.g. {partitioned[:3]}); build the "
            "scorer before the DeepSpeed engine / outside `deepspeed.zero.Init`"
        )
