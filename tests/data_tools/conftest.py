"""Session fixtures of the data_tools tests: a synthetic PairUG and its default BAGEL export (8 ranks x 2 workers)."""

from pathlib import Path

import pytest

from tests.data_tools.pairug_fixture import make_pairug


@pytest.fixture(scope="session")
def pairug(tmp_path_factory) -> tuple[Path, list[dict]]:
    return make_pairug(tmp_path_factory.mktemp("pairug"))


@pytest.fixture(scope="session")
def bagel_export(pairug, tmp_path_factory) -> Path:
    """The default export (16 shards: 8 ranks x 2 workers) of the synthetic PairUG."""
    from data_tools.export_bagel import main

    out = tmp_path_factory.mktemp("export") / "bagel"
    main(["--pairs", str(pairug[0]), "--out", str(out)])
    return out
