from __future__ import annotations

from email.message import EmailMessage

from varsel.lint_content import attachments_in


def test_attachments_and_parts_that_are_not_text() -> None:
    message = EmailMessage()
    message["From"] = "sikkerhet@nsr-org.no"
    message.set_content("Se vedlegget.")
    message.add_alternative("<p>Se vedlegget.</p>", subtype="html")
    assert attachments_in(message.as_bytes()) == []
    message.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="rad.pdf")
    message.add_attachment("tekst", filename="notat.txt")
    assert attachments_in(message.as_bytes()) == [
        "application/pdf (rad.pdf)",
        "text/plain (notat.txt)",
    ]
