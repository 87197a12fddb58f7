"""Reply parsing: the relay's bytes, however they are split across reads, become SmtpReplies."""

from __future__ import annotations

import asyncio

from varsel.channel.smtp_replies import Replies, SendOutcome, SmtpReply


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


def test_relay_trouble_is_the_relays_state_never_the_recipients() -> None:
    def trouble(code: int, enhanced: str | None, *, sender: bool = False) -> bool:
        reply = SmtpReply(code, enhanced, "")
        return SendOutcome(reply, False, None, sender_refused=sender).relay_trouble

    assert SendOutcome(None, False, "tidsavbrudd: SMTP-tjeneren svarte ikke").relay_trouble
    assert SendOutcome(None, True, "SMTP-tjeneren lukket forbindelsen").relay_trouble
    assert trouble(421, "4.7.0")  # to MAIL FROM or after DATA: the relay is closing
    assert trouble(451, "4.3.0")
    assert trouble(452, "4.3.1")
    assert trouble(451, "4.1.8", sender=True)
    assert trouble(550, "5.7.1", sender=True)
    assert not trouble(250, "2.0.0")
    assert not trouble(450, "4.7.1")  # greylisting: the recipient's domain, retried alone
    assert not trouble(452, "4.2.2")  # a full mailbox
    assert not trouble(451, None)
    assert not trouble(550, "5.1.1")
    assert not trouble(554, "5.3.4")  # permanent: counted by what it says, not here


def test_a_421_to_rcpt_throttles_the_recipients_domain_unless_the_mail_system_is_in_trouble() -> (
    None
):
    def outcome(code: int, enhanced: str | None, *, recipient: bool = True) -> SendOutcome:
        reply = SmtpReply(code, enhanced, "")
        return SendOutcome(reply, False, None, recipient_refused=recipient)

    throttled = outcome(421, "4.7.0")  # Gmail's and Yahoo's rate limits
    assert (throttled.domain_throttled, throttled.relay_trouble) == (True, False)
    assert outcome(421, None).domain_throttled
    shutting_down = outcome(421, "4.3.2")
    assert (shutting_down.domain_throttled, shutting_down.relay_trouble) == (False, True)
    at_mail = outcome(421, "4.7.0", recipient=False)
    assert (at_mail.domain_throttled, at_mail.relay_trouble) == (False, True)
    greylisted = outcome(450, "4.7.1")  # the recipient's alone: retried by itself
    assert (greylisted.domain_throttled, greylisted.relay_trouble) == (False, False)
