"""The builder end to end: demo data + demo backend, stage-by-stage runs, resume, and the OpenAI path."""

import json

import numpy as np
import pytest

from data_tools.build_pairs import main
from data_tools.features import EncoderConfig, cached_features
from data_tools.loopback_openai import FakeOpenAI
from data_tools.make_demo_data import demo_build_args, make_demo_data
from data_tools.toy_world import COLOR_RGB
from data_tools.validate import validate_file
from open_r1.dataset import load_pair_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_data(tmp_path_factory.mktemp("demo"), num_understanding=16, num_generation=16, seed=1, size=32)


@pytest.mark.slow
def test_demo_build_is_valid_and_resumable(demo, tmp_path):
    args = demo_build_args(demo, tmp_path / "work", num_clusters=4) + ["--image-size", "32"]
    summary = main(args)
    output = tmp_path / "work" / "pairs.jsonl"
    errors, counts = validate_file(output)
    assert errors == [] and counts["aligned"] == summary["by_type"]["aligned"] == 4
    assert summary["build"]["random_init"] is True
    assert (tmp_path / "work" / "pairs.similarity.png").stat().st_size > 0
    ds = load_pair_dataset(output)
    # The demo_color reward's cue: exactly one of the words it reads (`COLOR_RGB`, grey included) per prompt.
    assert all(sum(w in COLOR_RGB for w in p.split()) == 1 for p in ds["prompt"])
    retrieved = [r for r in ds if r["pair_type"] == "retrieved"]
    assert len({r["und_image_path"] for r in retrieved}) == len(retrieved) and all(
        r["similarity"] >= 0.6 for r in retrieved
    )
    before = output.read_text()
    main(args)  # rerun: every stage cached, same bytes
    assert output.read_text() == before


def test_stage_without_inputs_says_what_to_run(demo, tmp_path):
    args = demo_build_args(demo, tmp_path / "work", num_clusters=4)
    with pytest.raises(SystemExit, match="run --stage cluster"):
        main(args + ["--stage", "complete"])


@pytest.mark.slow
def test_openai_backend_stage_by_stage_and_no_repeat_calls(demo, tmp_path):
    rng = np.random.default_rng(0)
    features = tmp_path / "feats.npy"
    np.save(features, rng.random((32, 16)).astype(np.float32))  # nonnegative, so cosines are high like ResNet's
    base = ["--understanding", str(demo["understanding"]), "--generation", str(demo["generation"]),
            "--work-dir", str(tmp_path / "work"), "--features", str(features), "--num-clusters", "3",
            "--relative-to", str(demo["understanding"].parent)]  # fmt: skip
    with FakeOpenAI(failures=["429"]) as server:
        api = ["--base-url", server.base_url, "--api-key", "x", "--retry-base-delay", "0.001"]
        main(base + api + ["--dry-run", "--stage", "cluster"])
        assert main(base + api + ["--stage", "complete", "--dry-run"]) is None and server.requests == 0
        for stage in ("complete", "retrieve", "assemble"):
            summary = main(base + api + ["--stage", stage])
        assert server.requests == 3 * 2 + 1  # 3 medoids x (draft + verify) + one 429
        assert summary["by_type"]["aligned"] == 3 and summary["completion_usage"]["retries"] == 1
        main(base + api)  # full rerun: no new API calls
        assert server.requests == 7
    lines = [json.loads(x) for x in (tmp_path / "work" / "pairs.jsonl").read_text().splitlines()]
    assert all(not x["understand_ann"]["image_path"].startswith("/") for x in lines)
    assert validate_file(tmp_path / "work" / "pairs.jsonl", image_root=demo["understanding"].parent)[0] == []


def test_feature_cache_and_normalisation(demo, tmp_path):
    paths = [str(demo["understanding"].parent / f"images/und_000{i}.png") for i in range(3)]
    config = EncoderConfig(random_init=True, image_size=32, batch_size=2)
    feats, meta = cached_features(["a", "b", "c"], paths, config, tmp_path)
    assert feats.shape == (3, 2048) and meta["random_init"] is True
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    again, _ = cached_features(["a", "b", "c"], paths, config, tmp_path)
    np.testing.assert_array_equal(again, feats)
    assert len(list(tmp_path.iterdir())) == 1  # one cache entry; a different image list makes a second
    cached_features(["a", "b"], paths[:2], config, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(ValueError, match="encoder-weights"):
        EncoderConfig()


@pytest.mark.slow
def test_demo_cli_with_relative_out_writes_cwd_independent_paths(tmp_path, monkeypatch):
    from data_tools.make_demo_data import main as demo_main

    monkeypatch.chdir(tmp_path)
    demo_main(["--out", "rel", "--num-understanding", "8", "--num-generation", "8", "--size", "32", "--pairs"])
    monkeypatch.chdir(tmp_path.parent)  # `make demo` hands the file to a trainer that may run from elsewhere
    ds = load_pair_dataset(tmp_path / "rel" / "pairs" / "pairs.jsonl")
    assert len(ds) > 0 and all(
        p.startswith(str(tmp_path)) for p in list(ds["und_image_path"]) + list(ds["gen_image_path"])
    )


def _api_build_args(demo, tmp_path, server, key="x"):
    features = tmp_path / "feats.npy"
    np.save(features, np.random.default_rng(0).random((32, 16)).astype(np.float32))
    return ["--understanding", str(demo["understanding"]), "--generation", str(demo["generation"]),
            "--work-dir", str(tmp_path / "work"), "--features", str(features), "--num-clusters", "3",
            "--base-url", server.base_url, "--api-key", key, "--retry-base-delay", "0.001"]  # fmt: skip


def test_bad_or_missing_key_fails_before_features(demo, tmp_path, monkeypatch):
    with FakeOpenAI(api_key="right") as server:
        args = demo_build_args(demo, tmp_path / "work", num_clusters=4)
        args += ["--base-url", server.base_url, "--backend", "openai"]
        with pytest.raises(SystemExit, match=r"^error: API key rejected by .*HTTP 401"):
            main(args + ["--api-key", "wrong"])
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        with pytest.raises(SystemExit, match=r"^error: no API key; fix: set OPENAI_API_KEY"):
            main(args)
        assert server.requests == 0
    assert not (tmp_path / "work" / "features").exists()  # no expensive stage ran


def test_progress_bars_cost_summary_and_quiet_http_logs(demo, tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    # The first medoid is refused on every try (--max-retries 1): it is dropped, the build goes on.
    with FakeOpenAI(failures=["refusal", "refusal"]) as server:
        args = _api_build_args(demo, tmp_path, server) + ["--max-in-flight", "1", "--max-retries", "1"]
        summary = main(args)
    err, out = capsys.readouterr()[::-1]
    usage = summary["completion_usage"]
    assert summary["by_type"]["aligned"] == 2 and usage["dropped"] == 1
    (drop,) = usage["dropped_samples"]
    assert drop["id"] and drop["reason"].startswith("MalformedResponse: I can't help")
    assert usage["cost_usd_estimate"] == pytest.approx((4 * 100 * 2.0 + 4 * 20 * 8.0) / 1e6)  # o3 list price
    assert "completion: 100%" in err and "calls=4 hits=0 retries=1 dropped=1 tokens=480 cost=$0.00" in err
    assert "retrieval: 100%" in err
    assert f"wrote {summary['pairs']} pairs" in out and f"dropped {drop['id']}" in out
    assert "HTTP Request" not in caplog.text
    with FakeOpenAI() as server:
        main(_api_build_args(demo, tmp_path, server) + ["--verbose", "--price", "1,1"])
        assert server.requests == 2  # only the dropped sample's draft + verify are paid again
    assert "HTTP Request: POST" in caplog.text


def test_server_down_past_the_retries_ends_with_one_line_naming_the_flag(demo, tmp_path):
    """Issue 25: transient-only exhaustion gave a raw openai traceback; now one `error:` line says what to do."""
    with FakeOpenAI(failures=["500"] * 3) as server:
        args = _api_build_args(demo, tmp_path, server) + ["--max-in-flight", "1", "--max-retries", "2"]
        with pytest.raises(
            SystemExit, match=r"^error: the \w+ call failed 3 time\(s\) .*raise --max-retries \(now 2\)"
        ):
            main(args)
