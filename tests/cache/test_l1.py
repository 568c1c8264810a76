"""The L1 cache: byte bounds, namespacing, expiry, fairness, W-TinyLFU quality, exact counters.

White-box where it pays: :func:`check_structure` walks a segment's queues to prove the byte
accounting and queue membership are exact after every step of the randomized tests.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tenantry.cache.l1 import MISSING, TenantL1
from tenantry.cache.sketch import MAX_COUNT, FrequencySketch
from tenantry.errors import InvalidInput

from .traces import ByteLRU, replay, scan_trace, zipf_trace


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def check_structure(cache: TenantL1[Any]) -> None:
    """Bytes and queue membership are exact; the bound and the budgets hold."""
    total = 0
    for tenant, segment in cache._segments.items():
        queues = {
            "window": segment.window,
            "probation": segment.probation,
            "protected": segment.protected,
        }
        assert not segment.candidates, "candidates outlived a write"
        assert len(segment.reads) < cache._read_buffer
        assert sum(len(q) for q in queues.values()) == len(segment.data)
        for queue in queues.values():
            for key, entry in queue.items():
                assert segment.data[key] is entry
                assert entry._queue is queue
                assert entry.tenant == tenant
        assert segment.window_bytes == sum(e.size for e in segment.window.values())
        assert segment.protected_bytes == sum(e.size for e in segment.protected.values())
        assert segment.bytes == sum(e.size for e in segment.data.values())
        if segment.budget is not None:
            assert segment.bytes <= segment.budget
        assert (tenant in cache.tenants()) == bool(segment.data)
        total += segment.bytes
    assert cache.total_bytes == total <= cache.capacity_bytes


# -- basics ---------------------------------------------------------------------------------


def test_get_set_delete() -> None:
    cache: TenantL1[object] = TenantL1(10_000)
    assert cache.get("a", "k") is MISSING
    assert cache.set("a", "k", None, 10)
    assert cache.get("a", "k") is None  # None is a value, MISSING is a miss
    assert cache.set("a", "k", "v2", 30)
    assert cache.get("a", "k") == "v2"
    assert cache.total_bytes == 30
    assert cache.delete("a", "k")
    assert not cache.delete("a", "k")
    assert cache.get("a", "k") is MISSING
    assert cache.total_bytes == 0
    assert cache.tenants() == []


def test_written_entries_are_new_objects() -> None:
    cache: TenantL1[str] = TenantL1(10_000)
    cache.set("a", "k", "v1", 10, meta={"tag": 1})
    first = cache.get_entry("a", "k")
    assert first is not None
    assert first.meta == {"tag": 1}
    assert first.cached
    cache.set("a", "k", "v2", 20)
    second = cache.get_entry("a", "k")
    assert second is not None
    assert second.value == "v2"
    assert second.size == 20
    assert first.value == "v1"
    assert not first.cached


@pytest.mark.parametrize(
    ("tenant", "key", "size"),
    [(1, "k", 1), ("a", b"k", 1), ("a", "k", 0), ("a", "k", -5), ("a", "k", True), ("a", "k", 1.5)],
)
def test_bad_input_is_refused(tenant: object, key: object, size: object) -> None:
    cache: TenantL1[object] = TenantL1(1000)
    with pytest.raises(InvalidInput):
        cache.set(tenant, key, "v", size)  # type: ignore[arg-type]
    assert cache.total_bytes == 0


def test_an_entry_that_can_never_fit_is_refused_and_drops_the_old_value() -> None:
    cache: TenantL1[str] = TenantL1(1000)
    assert cache.set("a", "k", "small", 100)
    assert not cache.set("a", "k", "huge", 1001)
    assert cache.get("a", "k") is MISSING  # no stale value survives a write
    cache.set_budget("b", 300)
    assert not cache.set("b", "k", "over budget", 301)
    assert cache.stats("a").rejections == 1
    assert cache.stats("b").rejections == 1
    assert cache.total_bytes == 0


# -- namespacing ----------------------------------------------------------------------------

ADVERSARIAL_KEYS = [
    "k",
    "",
    "b:k",
    "a:k",
    ":",
    "b",
    "a\x00b",
    "\x00",
    "b\x00k",
    "tenant-b:secret",
    "ключ",
    "🔑:b",
    "k" * 300,
    "b/../a/k",
    "%62:k",
]


def test_keys_cannot_reach_another_tenants_entries() -> None:
    cache: TenantL1[str] = TenantL1(1_000_000)
    tenants = ["a", "b", "a:b", "b:k", "tenant-b", "ключ"]
    for tenant in tenants:
        for key in ADVERSARIAL_KEYS:
            assert cache.set(tenant, key, f"{tenant!r}/{key!r}", 10)
    for tenant in tenants:
        assert sorted(cache.keys(tenant)) == sorted(ADVERSARIAL_KEYS)
        for key in ADVERSARIAL_KEYS:
            assert cache.get(tenant, key) == f"{tenant!r}/{key!r}"
    # "a" + ":" + "b:k" and "a:b" + ":" + "k" would collide in a concatenated key space.
    cache.delete("a", "b:k")
    assert cache.get("a:b", "k") == "'a:b'/'k'"
    assert cache.clear_tenant("b") == len(ADVERSARIAL_KEYS)
    for tenant in tenants:
        expected = MISSING if tenant == "b" else f"{tenant!r}/'k'"
        assert cache.get(tenant, "k") == expected
    assert cache.get("c", "b:k") is MISSING
    check_structure(cache)


# -- expiry ---------------------------------------------------------------------------------


def test_an_expired_entry_is_a_miss_and_is_removed() -> None:
    clock = Clock()
    cache: TenantL1[str] = TenantL1(10_000, clock=clock)
    cache.set("a", "k", "v", 10, expires_at=clock.now + 5)
    cache.set("a", "forever", "v", 10)
    assert cache.get("a", "k") == "v"
    clock.now += 5
    assert cache.get("a", "k") is MISSING
    assert cache.total_bytes == 10
    assert list(cache.keys("a")) == ["forever"]
    stats = cache.stats("a")
    assert (stats.hits, stats.misses, stats.expirations, stats.entries) == (1, 1, 1, 1)


def test_expire_sweeps_without_touching_live_entries() -> None:
    clock = Clock()
    cache: TenantL1[int] = TenantL1(1_000_000, clock=clock)
    for i in range(100):
        cache.set("a" if i % 2 else "b", f"k{i}", i, 10, expires_at=clock.now + 1 + i)
    assert cache.expire(clock.now + 50.5) == 50
    assert cache.total_bytes == 500
    assert cache.stats("a").expirations + cache.stats("b").expirations == 50
    clock.now += 1000
    assert not cache.set("a", "past", 1, 10, expires_at=clock.now)  # already expired
    assert cache.total_bytes == 0  # the write swept everything first
    check_structure(cache)


def test_the_expiry_heap_stays_bounded_under_overwrites() -> None:
    clock = Clock()
    cache: TenantL1[int] = TenantL1(1_000_000, clock=clock)
    for i in range(10_000):
        cache.set("a", f"k{i % 10}", i, 10, expires_at=clock.now + 3600)
    assert len(cache._expiry) <= 2 * 10 + 64


def test_an_update_that_expires_later_takes_over_the_timer_and_still_expires() -> None:
    clock = Clock()
    cache: TenantL1[int] = TenantL1(1_000_000, clock=clock)
    cache.set("a", "k", 1, 10, expires_at=clock.now + 5)
    cache.set("a", "k", 2, 10, expires_at=clock.now + 50)  # later: the same timer, re-armed
    assert len(cache._expiry) == 1
    assert cache.expire(clock.now + 5) == 0  # the old time passes: nothing expired
    assert cache.get("a", "k") == 2
    cache.set("a", "k", 3, 10, expires_at=clock.now + 20)  # earlier: a timer of its own
    assert cache.expire(clock.now + 19.9) == 0
    assert cache.expire(clock.now + 20) == 1
    assert cache.get("a", "k") is MISSING
    assert (cache.stats("a").expirations, cache.total_bytes) == (1, 0)


def test_expire_removes_exactly_the_expired_entries_whatever_the_updates() -> None:
    clock = Clock()
    cache: TenantL1[int] = TenantL1(10_000_000, clock=clock)
    rng = random.Random(3)
    expiries: dict[str, float] = {}
    for step in range(20_000):
        key = f"k{rng.randrange(300)}"
        roll = rng.random()
        if roll < 0.8:
            expires_at = clock.now + rng.choice([0.5, 1.0, 5.0, 30.0])
            assert cache.set("a", key, step, 10, expires_at=expires_at)
            expiries[key] = expires_at
        elif roll < 0.9:
            cache.delete("a", key)
            expiries.pop(key, None)
        else:
            clock.now += rng.random() * 2
            due = sorted(k for k, at in expiries.items() if at <= clock.now)
            assert cache.expire() == len(due)
            for k in due:
                del expiries[k]
            assert sorted(cache.keys("a")) == sorted(expiries)
            assert len(cache._expiry) <= 2 * len(expiries) + 64
    check_structure(cache)


# -- counters and buffers -------------------------------------------------------------------


def test_stats_are_exact() -> None:
    cache: TenantL1[int] = TenantL1(1000, read_buffer=8)
    for i in range(5):
        cache.set("a", f"k{i}", i, 100)
    for _ in range(37):
        assert cache.get("a", "k1") == 1
    for _ in range(4):
        assert cache.get("a", "nope") is MISSING
    assert cache.get_entry("a", "k2") is not None
    assert cache.get_entry("a", "k2", record=False) is not None  # a peek counts nothing
    assert cache.get_entry("a", "nope", record=False) is None
    assert cache.get("z", "k1") is MISSING
    stats = cache.stats("a")
    assert (stats.hits, stats.misses, stats.bytes, stats.entries) == (38, 4, 500, 5)
    assert stats.hit_ratio == pytest.approx(38 / 42)
    assert cache.stats("z").misses == 1
    assert cache.clear_tenant("a") == 5
    assert cache.stats("a").hits == 38  # counters outlive the entries
    assert cache.total_bytes == 0


def test_the_read_buffer_is_bounded_and_every_read_is_counted() -> None:
    cache: TenantL1[int] = TenantL1(1_000_000, read_buffer=64)
    for i in range(100):
        cache.set("a", f"k{i}", i, 10)
    rng = random.Random(3)
    for _ in range(10_000):
        cache.get("a", f"k{rng.randrange(100)}")
        assert len(cache._segments["a"].reads) < 64
    assert cache.stats("a").hits == 10_000


def test_evictions_and_rejections_account_for_every_write() -> None:
    cache: TenantL1[int] = TenantL1(5_000, seed=1)
    trace = zipf_trace(n_keys=500, length=5_000, seed=2, max_size=512)
    replaced = refused = 0
    for key, size in trace:
        replaced += cache.get_entry("a", key, record=False) is not None
        refused += not cache.set("a", key, 0, size)
    stats = cache.stats("a")
    # Each write made one entry, now cached, replaced by a later write, evicted or rejected.
    assert len(trace) == stats.entries + replaced + stats.evictions + stats.rejections
    assert 0 < refused <= stats.rejections + stats.evictions
    check_structure(cache)


# -- the byte bound under random operations, against a model ---------------------------------

TENANTS = st.sampled_from(["a", "b", "c"])
KEYS = st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "b:k0", "", "ключ"])


class L1Model(RuleBasedStateMachine):
    """Random operations; a cached value is always the last one written, bytes always exact."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.cache: TenantL1[object] = TenantL1(2_000, clock=self.clock, read_buffer=4, seed=0)
        self.last: dict[tuple[str, str], object] = {}
        self.lookups: Counter[str] = Counter()

    @rule(
        tenant=TENANTS,
        key=KEYS,
        size=st.integers(1, 700),
        ttl=st.none() | st.floats(0.5, 20),
    )
    def write(self, tenant: str, key: str, size: int, ttl: float | None) -> None:
        value = object()
        expires_at = None if ttl is None else self.clock.now + ttl
        if self.cache.set(tenant, key, value, size, expires_at=expires_at):
            self.last[(tenant, key)] = value
        else:
            self.last.pop((tenant, key), None)

    @rule(tenant=TENANTS, key=KEYS)
    def read(self, tenant: str, key: str) -> None:
        self.lookups[tenant] += 1
        value = self.cache.get(tenant, key)
        if value is not MISSING:
            assert value is self.last[(tenant, key)]

    @rule(tenant=TENANTS, key=KEYS)
    def delete(self, tenant: str, key: str) -> None:
        self.cache.delete(tenant, key)
        self.last.pop((tenant, key), None)
        assert self.cache.get_entry(tenant, key, record=False) is None

    @rule(tenant=TENANTS)
    def clear_tenant(self, tenant: str) -> None:
        self.cache.clear_tenant(tenant)
        assert list(self.cache.keys(tenant)) == []

    @rule(tenant=TENANTS, budget=st.none() | st.integers(1, 1500))
    def set_budget(self, tenant: str, budget: int | None) -> None:
        self.cache.set_budget(tenant, budget)

    @rule(seconds=st.floats(0, 10))
    def tick(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule()
    def expire(self) -> None:
        self.cache.expire()

    @invariant()
    def accounting_is_exact(self) -> None:
        check_structure(self.cache)
        for tenant in ("a", "b", "c"):
            stats = self.cache.stats(tenant)
            assert stats.hits + stats.misses == self.lookups[tenant]
            for key in self.cache.keys(tenant):
                entry = self.cache.get_entry(tenant, key, record=False)
                assert entry is not None
                assert entry.value is self.last[(tenant, key)]


TestL1Model = L1Model.TestCase
TestL1Model.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)


def test_random_operations_keep_the_bound_and_the_accounting() -> None:
    """A long seeded run: pressure, sketch growth and aging, the climber, many tenants."""
    clock = Clock()
    cache: TenantL1[int] = TenantL1(50_000, clock=clock, read_buffer=16, seed=5)
    rng = random.Random(11)
    tenants = [f"t{i}" for i in range(6)]
    for step in range(60_000):
        tenant = rng.choice(tenants)
        key = f"k{int(rng.paretovariate(1.2)) % 400}"
        roll = rng.random()
        if roll < 0.55:
            cache.get(tenant, key)
        elif roll < 0.93:
            ttl = rng.choice([None, None, 5.0, 50.0])
            expires_at = None if ttl is None else clock.now + ttl
            cache.set(tenant, key, step, rng.randint(1, 3000), expires_at=expires_at)
        elif roll < 0.97:
            cache.delete(tenant, key)
        elif roll < 0.99:
            cache.set_budget(tenant, rng.choice([None, 5_000, 20_000]))
        else:
            clock.now += 1.0
        if step % 500 == 0:
            check_structure(cache)
    check_structure(cache)
    totals = Counter[str]()
    for tenant in tenants:
        stats = cache.stats(tenant)
        totals.update(evictions=stats.evictions, rejections=stats.rejections)
        totals.update(expirations=stats.expirations)
    assert min(totals.values()) > 100, totals  # the run did exercise every way out


# -- fairness -------------------------------------------------------------------------------


def test_a_flood_from_one_tenant_never_evicts_another_within_its_share() -> None:
    cache: TenantL1[str] = TenantL1(1_000_000, seed=1)
    working_set = {f"a{i}": 2_000 for i in range(100)}  # 200 KB, under A's 500 KB share
    for key, size in working_set.items():
        assert cache.set("a", key, key, size)
    rng = random.Random(4)
    keys = list(working_set)
    a_misses = 0
    for i in range(20_000):  # B writes 50 MB of unique keys, 50x the capacity
        cache.set("b", f"flood{i}", "x", rng.randint(1_000, 4_000))
        key = keys[min(int(rng.paretovariate(1.0)) - 1, 99)]
        if cache.get("a", key) is MISSING:
            a_misses += 1
            cache.set("a", key, key, working_set[key])
    a = cache.stats("a")
    # The bound: A loses nothing, so after its warm-up its hit ratio is exactly 1.
    assert a_misses == 0
    assert a.evictions == 0
    assert a.rejections == 0
    assert a.entries == 100
    assert a.bytes == 200_000
    assert cache.stats("b").bytes <= 800_000
    check_structure(cache)


def test_a_tenant_over_its_share_keeps_its_share_against_a_flood() -> None:
    cache: TenantL1[str] = TenantL1(1_000_000, seed=1)
    for i in range(400):  # A wants 800 KB, more than its 500 KB share
        cache.set("a", f"a{i}", "v", 2_000)
    assert cache.stats("a").bytes == 800_000  # alone, it may borrow the whole cache
    rng = random.Random(5)
    for i in range(20_000):
        cache.set("b", f"flood{i}", "x", rng.randint(1_000, 4_000))
    a, b = cache.stats("a"), cache.stats("b")
    assert a.share == 500_000
    assert a.bytes >= 500_000 - 4_000  # the flood took back only what A had borrowed
    assert b.bytes <= 500_000 + 4_000
    check_structure(cache)


def test_competing_tenants_converge_to_their_shares() -> None:
    cache: TenantL1[str] = TenantL1(300_000, seed=2)
    cache.set_weight("heavy", 2.0)
    rng = random.Random(6)
    tenants = ["heavy", "b", "c"]
    for i in range(30_000):
        cache.set(rng.choice(tenants), f"k{i}", "v", rng.randint(500, 2_000))
    assert cache.share("heavy") == 150_000
    assert cache.share("b") == 75_000
    for tenant in tenants:
        share = cache.share(tenant)
        assert share - 2_000 <= cache.stats(tenant).bytes <= share + 2_000, tenant


def test_a_budget_is_a_hard_cap() -> None:
    cache: TenantL1[str] = TenantL1(1_000_000, seed=3)
    cache.set_budget("b", 100_000)
    for i in range(2_000):
        cache.set("b", f"k{i}", "v", 1_000)
        assert cache.stats("b").bytes <= 100_000
    assert cache.stats("b").share == 100_000
    cache.set_budget("b", 10_000)  # lowering it evicts at once
    assert cache.stats("b").bytes <= 10_000
    cache.set_budget("b", None)
    for i in range(2_000):
        cache.set("b", f"again{i}", "v", 1_000)
    assert cache.stats("b").bytes > 100_000
    check_structure(cache)


# -- policy quality -------------------------------------------------------------------------


def _hit_ratios(trace: list[tuple[str, int]], capacity: int) -> tuple[float, float]:
    cache: TenantL1[str] = TenantL1(capacity, seed=7)
    l1 = replay(
        trace, lambda k: cache.get("t", k) is not MISSING, lambda k, s: cache.set("t", k, k, s)
    )
    lru = ByteLRU(capacity)
    reference = replay(trace, lambda k: lru.get(k) is not None, lambda k, s: lru.set(k, k, s))
    return l1, reference


def test_w_tinylfu_beats_lru_on_a_scan_polluted_trace() -> None:
    # 30k Zipf(0.9) requests over 5k keys (~5.5 MB), a 1k-key scan every 3k; a 500 KB cache.
    # Seeds 1-12 gave margins of 0.071-0.083 (L1 ~0.46, LRU ~0.38); asserting 0.03 is robust.
    trace = scan_trace(n_keys=5_000, s=0.9, length=30_000, scan_every=3_000, scan_length=1_000)
    l1, lru = _hit_ratios(trace, 500_000)
    assert l1 >= lru + 0.03, (l1, lru)


def test_w_tinylfu_beats_lru_on_zipf() -> None:
    # Seeds 1-12 gave margins of 0.065-0.087 (L1 ~0.61, LRU ~0.54).
    trace = zipf_trace(n_keys=5_000, s=0.9, length=30_000)
    l1, lru = _hit_ratios(trace, 500_000)
    assert l1 >= lru + 0.03, (l1, lru)


def test_a_scan_does_not_flush_the_hot_set() -> None:
    cache: TenantL1[str] = TenantL1(100_000, seed=1)
    hot = [f"hot{i}" for i in range(80)]  # 80 KB
    for _ in range(5):
        for key in hot:
            if cache.get("t", key) is MISSING:
                cache.set("t", key, key, 1_000)
    for i in range(5_000):  # 5 MB of one-hit keys
        cache.set("t", f"scan{i}", "x", 1_000)
    assert sum(cache.get("t", key) is not MISSING for key in hot) >= 76


def test_the_window_grows_on_a_recency_biased_trace() -> None:
    cache: TenantL1[int] = TenantL1(100_000, seed=1)
    rng = random.Random(8)
    recent: list[str] = []
    for i in range(30_000):  # each new key is asked for again soon, then never
        if recent and rng.random() < 0.7:
            key = recent[-1 - min(int(rng.expovariate(1 / 30)), len(recent) - 1)]
        else:
            key = f"n{i}"
            recent.append(key)
        if cache.get("t", key) is MISSING:
            cache.set("t", key, i, 1_000)
    assert cache._segments["t"].window_share > 0.2  # started at 0.01
    check_structure(cache)


# -- the frequency sketch -------------------------------------------------------------------


def test_the_sketch_never_underestimates_and_saturates() -> None:
    sketch = FrequencySketch(1024)
    rng = random.Random(1)
    counts = Counter(f"k{int(rng.paretovariate(0.7)) % 500}" for _ in range(3000))
    for key, count in counts.items():
        for _ in range(count):
            sketch.add(sketch.cells(key))
    for key, count in counts.items():
        assert sketch.frequency(key) >= min(count, MAX_COUNT)
    assert max(sketch.frequency(key) for key in counts) == MAX_COUNT
    unseen = sum(sketch.frequency(f"unseen{i}") > 0 for i in range(1000))
    assert unseen < 100


def test_the_sketch_ages_by_halving() -> None:
    sketch = FrequencySketch(16)
    for _ in range(9):
        sketch.increment("hot")
    assert sketch.frequency("hot") == 9
    for i in range(sketch.sample_size):
        sketch.increment(f"other{i % 7}")
    assert sketch.frequency("hot") <= 4
    assert sketch.additions < sketch.sample_size


def test_the_sketch_grows_without_losing_history() -> None:
    sketch = FrequencySketch(16)
    for i in range(12):
        for _ in range(i):
            sketch.add(sketch.cells(f"k{i}"))
    before = {i: sketch.frequency(f"k{i}") for i in range(12)}
    assert sketch.ensure_capacity(5000)
    assert sketch.capacity == 8192
    assert not sketch.ensure_capacity(100)
    for i in range(12):
        assert sketch.frequency(f"k{i}") == before[i]
