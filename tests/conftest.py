"""Shared fixtures: a tiny random Janus-Pro checkpoint in the original DeepSeek format, built once per session."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep intra-op threads bounded so multi-process tests do not oversubscribe.
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# DeepSpeed JIT-builds its CPU ops once per folder: every multi-process test shares one build, outside the checkout.
# An interrupted build leaves a `lock` file that hangs every later run, so stale locks go at session start.
_EXTENSIONS = Path(
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(tempfile.gettempdir()) / "pairuni_torch_ext"))
)
for _lock in _EXTENSIONS.glob("*/lock"):
    _lock.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def tiny_janus_path(tmp_path_factory):
    """A tiny random Janus-Pro checkpoint written in the ORIGINAL DeepSeek layout (same loading path as real weights)."""
    from janus.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_janus"), seed=0)


@pytest.fixture(scope="session")
def tiny_janus(tiny_janus_path):
    """`(model, processor)` loaded from `tiny_janus_path`: float32, CPU, eval mode. Do not train it in place."""
    import janus

    model, processor = janus.load_pretrained(tiny_janus_path, dtype=torch.float32, device="cpu")
    model.eval()
    return model, processor


@pytest.fixture(scope="session")
def tiny_backbone(tiny_janus):
    """`(model, backbone)`: the same tiny model behind the backbone interface (`janus.backbone.JanusBackbone`)."""
    from janus.backbone import JanusBackbone

    model, processor = tiny_janus
    return model, JanusBackbone(processor)
