"""A tiny random Lumina-DiMOO checkpoint in the original layout, built once per test session."""

import pytest

from lumina_dimoo.checkpoint import load_pretrained
from lumina_dimoo.tiny import build_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_dimoo_path(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-dimoo"), seed=0)


@pytest.fixture(scope="session")
def tiny_dimoo(tiny_dimoo_path):
    """(model, tokenizer): read-only for tests (copy the folder to mutate it)."""
    return load_pretrained(tiny_dimoo_path)
