"""Reply parsing: the relay's bytes, however they are split across reads, become SmtpReplies."""

from __future__ import annotations

import asyncio

from varsel.channel.smtp_replies import Replies


def test_replies_joined_in_one_read_or_split_across_reads_are_parsed_alike() -> None:
    async def parsed(*chunks: bytes) -> list[str]:
        replies = Replies(asyncio.get_running_loop())
        for chunk in chunks:
            replies.data_received(chunk)
        return [str(await replies.reply()) for _ in range(4)]

    wire = b"250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n354 End data\r\n250-first\r\n250 last\r\n"
    expected = ["250 2.0.0 Ok: queued", "250 2.1.0 Ok", "354 End data", "250 first\nlast"]
    assert asyncio.run(parsed(wire)) == expected
    assert asyncio.run(parsed(*(wire[i : i + 1] for i in range(len(wire))))) == expected
    assert asyncio.run(parsed(wire[:30], wire[30:61], wire[61:])) == expected
