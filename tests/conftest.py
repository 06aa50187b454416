"""Shared fixtures: a tiny random Janus-Pro checkpoint in the original DeepSeek format and the demo's toy Janus-Pro,
each built once per session (the toy one cached across sessions in pytest's cache); the `gpu` marker's skip."""

import os
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep intra-op threads bounded so multi-process tests do not oversubscribe.
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# DeepSpeed JIT-builds its CPU ops once per folder: every multi-process test of this checkout shares one build in
# `<checkout>/.torch_extensions` (gitignored). Per checkout, not one folder under /tmp: an interrupted build leaves a
# `lock` file that hangs every later run, so stale locks go at session start, and deleting them in a folder that
# another checkout's session is building in would break that build.
_EXTENSIONS = Path(
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(__file__).resolve().parents[1] / ".torch_extensions"))
)
_EXTENSIONS.mkdir(parents=True, exist_ok=True)
for _lock in _EXTENSIONS.glob("*/lock"):
    _lock.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def fresh_warn_once(monkeypatch):
    """Every test starts with an empty `warn_once` registry: a key one test used up (a run logging grad_norm 0, a
    truncated prompt) would otherwise silence the warning another test asserts, depending on the order."""
    import open_r1.logs

    monkeypatch.setattr(open_r1.logs, "_warned", set())


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA: skipped (with the reason) on a host without it."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marker `gpu`)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def toy_janus_path(request):
    """The demo's toy Janus-Pro (scripts/make_toy_janus.py defaults): built once, reused from pytest's cache while
    its settings key matches (about two minutes on 2 cores the first time)."""
    from scripts.make_toy_janus import main as make_toy_main

    out = Path(request.config.cache.mkdir("toy-janus"))
    assert make_toy_main(["--out_dir", str(out), "--reuse"]) == 0
    return out
