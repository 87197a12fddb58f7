"""Group commits of the sender's marks and outcomes."""

from __future__ import annotations

import pytest


def test_database_thread_commits_what_a_mark_waits_for_at_once_and_the_rest_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import varsel.outbox_commits
    from varsel.outbox_commits import DbThread

    monkeypatch.setattr(varsel.outbox_commits, "COMMIT_LINGER", 0.5)
    applied: list[list[tuple[str, tuple[int]]]] = []

    async def scenario() -> None:
        dbt = DbThread(asyncio.get_running_loop(), applied.append)
        try:
            dbt.write(("outcome", (1,)))
            dbt.write(("mark", (2,)))
            await asyncio.wait_for(dbt.committed_future(), 0.4)  # not after the linger
            assert applied == [[("outcome", (1,)), ("mark", (2,))]]
            dbt.write(("outcome", (3,)))  # nobody waits: committed within the linger
            assert await dbt.call(sum, (4, 5)) == 9
            assert len(applied) == 1
            await asyncio.sleep(1.5)
            assert applied[-1] == [("outcome", (3,))]
            await asyncio.wait_for(dbt.committed_future(), 1)  # nothing left: done at once
        finally:
            await asyncio.to_thread(dbt.close)

    asyncio.run(scenario())


def test_database_thread_hands_a_failed_commit_to_whoever_waits_for_it() -> None:
    import asyncio

    from varsel.outbox_commits import DbThread

    def fail(writes: list[tuple[str, tuple[int]]]) -> None:
        raise RuntimeError("disk full")

    async def scenario() -> None:
        dbt = DbThread(asyncio.get_running_loop(), fail)
        try:
            dbt.write(("mark", (1,)))
            with pytest.raises(RuntimeError, match="disk full"):
                await asyncio.wait_for(dbt.committed_future(), 1)
            with pytest.raises(RuntimeError, match="disk full"):
                await dbt.committed_future()  # and to everyone after it
        finally:
            await asyncio.to_thread(dbt.close)

    asyncio.run(scenario())
