"""The scheduler: messages by recipient domain, within per-domain limits."""

from __future__ import annotations


def test_scheduler_hands_out_by_domain_within_its_limits() -> None:
    import asyncio

    from varsel.outbox import Delivery
    from varsel.scheduler import Item, Scheduler

    def item(n: int, domain: str) -> Item:
        delivery = Delivery(n, 1, f"post{n}@{domain}", "nb", "C", "t", 0, "2025-01-01", ("1",))
        return Item(delivery, b"", None, domain)

    async def scenario() -> list[str]:
        scheduler = Scheduler(per_domain_concurrency=1, per_domain_per_minute=6000)
        for n, domain in enumerate(["a.no", "a.no", "b.no"]):
            scheduler.add(item(n, domain))
        taken = [i.domain for i in (scheduler.take(), scheduler.take()) if i is not None]
        assert scheduler.take() is None  # a.no has one on the wire already
        waiting = asyncio.ensure_future(scheduler.next())
        await asyncio.sleep(0)
        scheduler.release("a.no")
        found = await asyncio.wait_for(waiting, 0.5)  # woken at once, not after its timeout
        assert found is not None
        scheduler.close()
        assert await scheduler.next() is None
        return [*taken, found.domain]

    assert asyncio.run(scenario()) == ["a.no", "b.no", "a.no"]


def test_scheduler_forgets_idle_domains() -> None:
    from varsel.outbox import Delivery
    from varsel.scheduler import Item, Scheduler

    # One message for each of many domains, as a national campaign has: what the scheduler
    # keeps per domain must not grow with them.
    scheduler = Scheduler(per_domain_concurrency=2, per_domain_per_minute=6_000_000)
    for n in range(10_000):
        domain = f"firma{n}.no"
        delivery = Delivery(n, 1, f"post@{domain}", "nb", "C", "t", 0, "2025-01-01", ("1",))
        scheduler.add(Item(delivery, b"", None, domain))
        taken = scheduler.take()
        assert taken is not None
        scheduler.release(taken.domain)
    assert len(scheduler.queues) <= 2048
    assert len(scheduler.buckets) == len(scheduler.queues)


def test_a_turn_promises_the_next_token_to_one_caller_until_it_is_taken() -> None:
    from varsel.scheduler import TokenBucket

    bucket = TokenBucket(rate=1 / 60, capacity=1.0)  # one a minute, the first at once
    assert bucket.turn() == 0.0
    # The token is still in the bucket, but promised: a second caller waits for the next.
    assert bucket.tokens >= 1
    assert 59.0 < bucket.turn() <= 120.0
    bucket.end_turn()
    assert bucket.try_take() == 0.0  # the promised one, taken once the promise is over
    assert 59.0 < bucket.turn() <= 60.0
    assert bucket.promised == 0
