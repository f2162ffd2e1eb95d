"""The per-user token bucket, driven by a hand-set clock."""
import pytest

from handlers.ratelimit import RateLimiter


class Ticker:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_passes_then_the_next_message_waits():
    clock = Ticker()
    limiter = RateLimiter(rate_per_minute=30, burst=10, clock=clock)
    assert [limiter.check("u1") for _ in range(10)] == [None] * 10
    assert limiter.check("u1") == pytest.approx(2.0)  # 30/min = one token every 2 s


def test_tokens_refill_with_time_and_never_above_burst():
    clock = Ticker()
    limiter = RateLimiter(rate_per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        assert limiter.check("u1") is None
    assert limiter.check("u1") == pytest.approx(1.0)
    clock.t += 1.0
    assert limiter.check("u1") is None
    clock.t += 3600  # an idle hour refills to the burst, not beyond
    assert [limiter.check("u1") for _ in range(4)][:3] == [None] * 3
    assert limiter.check("u1") is not None


def test_refused_messages_do_not_extend_the_wait():
    clock = Ticker()
    limiter = RateLimiter(rate_per_minute=60, burst=1, clock=clock)
    assert limiter.check("u1") is None
    waits = [limiter.check("u1") for _ in range(5)]
    assert waits == [pytest.approx(1.0)] * 5
    clock.t += 1.0
    assert limiter.check("u1") is None


def test_users_have_separate_buckets():
    clock = Ticker()
    limiter = RateLimiter(rate_per_minute=30, burst=1, clock=clock)
    assert limiter.check("telegram:1") is None
    assert limiter.check("telegram:1") is not None
    assert limiter.check("slack:U2") is None


def test_quiet_buckets_are_pruned(monkeypatch):
    import handlers.ratelimit as module

    monkeypatch.setattr(module, "PRUNE_AT", 5)
    clock = Ticker()
    limiter = RateLimiter(rate_per_minute=60, burst=2, clock=clock)
    for i in range(5):
        limiter.check(i)
    clock.t += 10  # all five buckets are full again
    limiter.check("new")
    limiter.check("newer")
    assert set(limiter._buckets) == {"new", "newer"}


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(rate_per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(burst=0)


def test_a_datetime_clock_works_too():
    from handlers.context import FixedClock
    from tests.conftest import T0

    clock = FixedClock(T0)
    limiter = RateLimiter(rate_per_minute=30, burst=1, clock=clock.now)
    assert limiter.check("u1") is None
    assert limiter.check("u1") == pytest.approx(2.0)
    clock.advance(seconds=2)
    assert limiter.check("u1") is None
