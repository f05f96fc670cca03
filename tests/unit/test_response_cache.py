"""The response cache's keys, eviction and damaged entries, in process (files under tmp_path)."""

import os

from gensvc.core.response_cache import ResponseCache

FREEZE5 = {"server": "https://bravo.example/freeze5/hg38/api/v1", "dataset": "freeze5/hg38", "api_version": "v1"}


def page(n: int) -> dict:
    # incompressible enough that each entry takes about the same few kB
    return {"data": [{"variant_id": f"22-{n}-{i}-{(n * 7919 + i * 104729) % 1000003}"} for i in range(200)], "next": None}


def test_an_answer_is_kept_per_query_and_namespace_whatever_the_order_of_its_parameters(tmp_path):
    cache = ResponseCache(tmp_path, FREEZE5, 10**7)
    cache.put("region", {"chrom": "22", "start": 1, "end": 9}, page(1))
    assert cache.get("region", {"end": "9", "start": "1", "chrom": "22"}) == page(1)
    assert cache.get("region", {"chrom": "22", "start": 1, "end": 10}) is None
    assert cache.get("variant", {"chrom": "22", "start": 1, "end": 9}) is None
    freeze8 = ResponseCache(tmp_path, {**FREEZE5, "dataset": "freeze8/hg38"}, 10**7)
    assert freeze8.get("region", {"chrom": "22", "start": 1, "end": 9}) is None


def test_past_its_bound_the_least_recently_used_answers_go_first(tmp_path):
    probe = ResponseCache(tmp_path / "probe", FREEZE5, 10**7)
    probe.put("region", {"n": 0}, page(0))
    entry = probe.size()
    cache = ResponseCache(tmp_path / "cache", FREEZE5, int(entry * 4.5))  # room for four
    for n in range(4):
        cache.put("region", {"n": n}, page(n))
        path = cache._entry(cache.key("region", {"n": n}))
        os.utime(path, (1_000_000 + n, 1_000_000 + n))  # written in this order, whatever the clock's grain
    assert cache.get("region", {"n": 0}) is not None  # the oldest, read now: the last to go
    cache.put("region", {"n": 4}, page(4))  # the fifth passes the bound
    assert cache.size() <= entry * 4.5
    assert [n for n in range(5) if cache.get("region", {"n": n}) is not None] == [0, 2, 3, 4]


def test_an_answer_larger_than_the_whole_bound_is_not_kept(tmp_path):
    cache = ResponseCache(tmp_path, FREEZE5, 100)
    cache.put("region", {"n": 1}, page(1))
    assert cache.get("region", {"n": 1}) is None and cache.size() == 0


def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    cache = ResponseCache(tmp_path, FREEZE5, 10**7)
    cache.put("region", {"n": 1}, page(1))
    [(_, _, path)] = cache.entries()
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get("region", {"n": 1}) is None
    assert not path.exists()


def test_no_partial_file_is_left_beside_the_entries(tmp_path):
    cache = ResponseCache(tmp_path, FREEZE5, 10**7)
    for n in range(3):
        cache.put("region", {"n": n}, page(n))
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".json.gz")]
