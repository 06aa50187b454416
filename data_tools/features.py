"""Image features (PairUni §1 step 1): torchvision ResNet-50, head removed, 2048-d, L2-normalised, cached.

Weights come from a local state-dict file (`--encoder-weights`, e.g. torchvision's
`resnet50-11ad3fa6.pth`); `random_init=True` is for tests and demos and is recorded in the cache
metadata. The cache key hashes the image list (paths, sizes, mtimes) and the encoder settings, so a
changed input recomputes and an unchanged one is read from `.npy` + ids.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import models, transforms
from tqdm import tqdm

from data_tools.image_io import open_rgb
from data_tools.jsonl import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderConfig:
    """How features are computed; every field is part of the cache key."""

    weights: str | None = None  # local state-dict path
    random_init: bool = False
    seed: int = 0  # for random_init
    image_size: int = 224
    batch_size: int = 32
    num_workers: int = 0

    def __post_init__(self):
        if self.weights is None and not self.random_init:
            raise ValueError("encoder weights: none given; fix: pass --encoder-weights PATH (or --random-init)")


def build_encoder(config: EncoderConfig) -> torch.nn.Module:
    """ResNet-50 with `fc` replaced by Identity (outputs the 2048-d pooled feature), eval mode."""
    torch.manual_seed(config.seed)
    model = models.resnet50(weights=None)
    if not config.random_init:
        state = torch.load(config.weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        model.load_state_dict(state)
    model.fc = torch.nn.Identity()
    return model.eval()


class _ImageFiles(Dataset):
    def __init__(self, paths: list[str], image_size: int):
        self.paths = paths
        # ImageNet evaluation preprocessing (resize short side to 256/224 of the input size, centre crop).
        self.transform = transforms.Compose(
            [
                transforms.Resize(round(image_size * 256 / 224)),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(open_rgb(self.paths[i]))


@torch.no_grad()
def compute_features(paths: list[str], config: EncoderConfig, device: str = "cpu") -> np.ndarray:
    """L2-normalised ResNet-50 features [N, 2048] float32 for the images at `paths` (batched, progress bar)."""
    model = build_encoder(config).to(device)
    loader = DataLoader(
        _ImageFiles(paths, config.image_size), batch_size=config.batch_size, num_workers=config.num_workers
    )
    chunks = []
    with tqdm(total=len(paths), desc="features", unit="image") as bar:
        for batch in loader:
            feats = model(batch.to(device))  # [B, 2048]
            chunks.append(torch.nn.functional.normalize(feats, dim=1).cpu().numpy())
            bar.update(len(batch))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 2048), np.float32)


def cache_key(paths: list[str], config: EncoderConfig) -> str:
    """sha256 over the encoder settings, the weights file's size/mtime, and each image's path, size and mtime."""
    h = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for p in ([config.weights] if config.weights else []) + paths:
        stat = Path(p).stat()
        h.update(f"{p}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_features(ids: list[str], paths: list[str], config: EncoderConfig, cache_dir: Path, device: str = "cpu"):
    """Features [N, 2048] for (ids, paths), read from or written to `cache_dir/<key>/`; returns (features, meta)."""
    folder = Path(cache_dir) / cache_key(paths, config)
    if (folder / "meta.json").is_file():
        logger.info("features: cache hit %s", folder)
        return np.load(folder / "features.npy"), json.loads((folder / "meta.json").read_text())
    logger.info("features: computing %d images (random_init=%s)", len(paths), config.random_init)
    features = compute_features(paths, config, device)
    buffer = io.BytesIO()
    np.save(buffer, features)
    atomic_write_bytes(folder / "features.npy", buffer.getvalue())
    atomic_write_bytes(folder / "ids.json", json.dumps(ids).encode())
    meta = {"encoder": "torchvision.resnet50", **asdict(config), "count": len(ids), "dim": int(features.shape[1])}
    atomic_write_json(folder / "meta.json", meta)  # written last: its presence marks a complete cache entry
    return features, meta


def load_precomputed(path: str | Path, ids: list[str]) -> np.ndarray:
    """Precomputed features: an `.npy` [N, D] whose rows follow `ids` (a sibling `<stem>.ids.json` is checked
    when present); rows are L2-normalised here."""
    path = Path(path)
    features = np.load(path).astype(np.float32)
    ids_file = path.with_suffix(".ids.json")
    if ids_file.is_file() and json.loads(ids_file.read_text()) != ids:
        raise ValueError(f"{ids_file}: ids differ from the inputs' ids; fix: recompute the features for these inputs")
    if features.shape[0] != len(ids):
        raise ValueError(f"{path}: {features.shape[0]} rows for {len(ids)} samples; fix: one row per sample")
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
