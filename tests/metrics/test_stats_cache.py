"""The real-statistics cache: hit on second use, a new entry when any part of the key changes,
and the image metrics computed from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from metrics_helpers import CountingExtractor, TinyImages

from ganlab.metrics import image_metrics as im
from ganlab.metrics.frechet import mean_and_covariance
from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.stats_cache import StatisticsCache, cache_key, data_identity

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DATA = {"_target_": "tests.TinyImages", "count": 64, "batch_size": 8, "seed": 0}


def metrics_for(cache: Path, *, data=DATA, datamodule=None, extractor=None,
                num_real: int | None = 32) -> ImageMetrics:
    dm = datamodule or TinyImages()
    dm.setup()
    ext = extractor or CountingExtractor(pixels=64)
    return ImageMetrics(ext, dm, data, num_real=num_real, cache_dir=cache, kid_subsets=5,
                        kid_subset_size=16)


def real_pass(metrics: ImageMetrics) -> tuple[int, Path]:
    """Images the extractor saw to get the real statistics, and the cache file used."""
    before = metrics.extractor.images_seen
    metrics.real_statistics(metrics.num_real(32))
    return metrics.extractor.images_seen - before, metrics.cache.path(metrics.key)


def test_second_use_reads_the_cache_and_computes_no_features(tmp_path) -> None:
    first = metrics_for(tmp_path)
    seen, path = real_pass(first)
    assert seen == 32 and path.is_file() and first.cache.misses == 1
    second = metrics_for(tmp_path)  # a new run: nothing in memory
    seen_again, path_again = real_pass(second)
    assert (seen_again, path_again) == (0, path)
    assert (second.cache.hits, second.cache.misses) == (1, 0)
    stats1, stats2 = first.real_statistics(32), second.real_statistics(32)
    assert torch.equal(stats1.features, stats2.features)
    assert stats2.mu.dtype == torch.float64 and stats2.sigma.dtype == torch.float64
    mu, sigma = mean_and_covariance(stats1.features)
    assert torch.allclose(stats2.mu, mu) and torch.allclose(stats2.sigma, sigma)
    key = json.loads(path.with_suffix(".json").read_text())
    assert key["num_real"] == 32 and key["extractor"] == "counting"
    # within a run the statistics stay in memory: no file read, no features
    assert real_pass(second)[0] == 0 and second.cache.hits == 1


@pytest.mark.parametrize("change", ["data", "split", "extractor", "weights", "resolution",
                                    "num_real", "content"])
def test_a_change_in_any_key_part_misses_the_cache(tmp_path, monkeypatch, change) -> None:
    _, path = real_pass(metrics_for(tmp_path))
    kwargs: dict = {}
    if change == "data":
        kwargs["data"] = {**DATA, "count": 63}
    elif change == "split":
        monkeypatch.setattr(im, "REAL_SPLIT", "test")
    elif change == "extractor":
        ext = CountingExtractor(pixels=64)
        ext.name = "other"
        kwargs["extractor"] = ext
    elif change == "weights":
        kwargs["extractor"] = CountingExtractor(pixels=64, seed=1)
    elif change == "resolution":
        kwargs["datamodule"] = TinyImages(shape=(1, 4, 16))  # same pixel count, other shape
    elif change == "num_real":
        kwargs["num_real"] = 31
    elif change == "content":
        kwargs["datamodule"] = TinyImages(content_seed=1)
    metrics = metrics_for(tmp_path, **kwargs)
    seen, other = real_pass(metrics)
    assert other != path
    assert seen == (31 if change == "num_real" else 32)
    assert metrics.cache.misses == 1 and metrics.cache.hits == 0


def test_key_is_the_sha256_of_canonical_json() -> None:
    import hashlib

    parts = {"b": 1, "a": [1, 2], "c": {"y": "x"}}
    text = '{"a":[1,2],"b":1,"c":{"y":"x"}}'
    assert cache_key(parts) == hashlib.sha256(text.encode()).hexdigest()
    assert cache_key({"a": [1, 2], "c": {"y": "x"}, "b": 1}) == cache_key(parts)
    assert data_identity({"_target_": "x", "batch_size": 3, "seed": 1, "path": "p"}) == \
        {"_target_": "x", "path": "p"}


def test_a_damaged_cache_file_is_recomputed(tmp_path) -> None:
    _, path = real_pass(metrics_for(tmp_path))
    path.write_bytes(b"not a torch file")
    metrics = metrics_for(tmp_path)
    assert real_pass(metrics)[0] == 32 and metrics.cache.misses == 1
    assert StatisticsCache(tmp_path).load(metrics.key) is not None  # rewritten


def test_image_metrics_of_the_real_images_themselves(tmp_path) -> None:
    dm = TinyImages(count=64)
    metrics = metrics_for(tmp_path, datamodule=dm, num_real=64)
    same = dm.sample_n(64, seed=im.REAL_SEED)  # exactly the real images, in the same order
    values = metrics(same)
    assert abs(values["fid"]) <= 1e-6
    assert (values["precision"], values["recall"]) == (1.0, 1.0)
    assert abs(values["kid"]) <= 3 * values["kid_std"] + 1e-9
    assert set(values) == {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    shifted = metrics((same * 0.2).clamp(-1, 1))
    assert shifted["fid"] > 0.05 and shifted["recall"] < 1.0  # less diverse: lower recall
    protocol = metrics.protocol(64)
    assert protocol["num_generated"] == 64 and protocol["num_real"] == 64
    assert protocol["real_split"] == "train" and protocol["extractor"] == "counting"
    assert protocol["weights_hash"] == metrics.extractor.weights_hash()
    assert protocol["precision"] == "float64 statistics, float32 features"
    assert set(protocol["versions"]) == {"torch", "torchmetrics", "torch_fidelity", "ganlab"}
    assert protocol["stats_key"] == metrics.cache.path(metrics.key).stem


def test_num_real_is_capped_at_the_dataset_size(tmp_path) -> None:
    metrics = metrics_for(tmp_path, num_real=None)
    assert metrics.num_real(1000) == 64 and metrics.num_real(10) == 10
