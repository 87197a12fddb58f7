"""Header values and links of a message."""

from __future__ import annotations

from varsel.message_fields import links_in, references


def test_links_in_finds_every_reference_in_markup_only() -> None:
    html = (
        "<p>Firma url(x) AS href=&#34;nope&#34;</p>"
        "<a href=\"https://a.test/1?x=1&amp;y=2\">a</a><img src='https://b.test/2'>"
        '<div style="background-image: url(&quot;https://c.test/3&quot;)"></div>'
        "<style>@import 'https://d.test/4'; p { background: url(https://e.test/5) }</style>"
    )
    assert links_in(html) == [
        "https://a.test/1?x=1&y=2",
        "https://b.test/2",
        "https://c.test/3",
        "https://d.test/4",
        "https://e.test/5",
    ]


def test_an_href_that_loads_is_named_by_its_tag() -> None:
    html = (
        '<link rel="stylesheet" href="https://a.test/s.css"><svg><image href="https://b.test/p"/>'
        '</svg><A HREF="https://c.test/">c</A><map><area href="https://d.test/"></map>'
    )
    assert references(html) == [
        ("link href", "https://a.test/s.css"),
        ("image href", "https://b.test/p"),
        ("href", "https://c.test/"),
        ("href", "https://d.test/"),
    ]
