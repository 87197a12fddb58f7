from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign import CampaignSpec
from varsel.campaign_spec import load_spec
from varsel.config import Settings
from varsel.letter_render import (
    ADDRESS_AREA,
    WINDOW,
    AddressTooLongError,
    Letter,
    LetterTemplateError,
    LetterTexts,
    PostalAddress,
    Renderer,
    default_letter_templates,
    fits_at_10pt,
    format_date,
    page_count,
    text_blocks,
)

CAMPAIGN = campaign_toml(organisation="Oslo politidistrikt")
ADDRESS = PostalAddress(("Postboks 1156 Sentrum",), "0107", "OSLO", None)
LETTER = Letter(7, "976389387", "ERNST & YOUNG AS", "nb", "QDETH290W7BE", ADDRESS, "no_email")


def spec(tmp_path: Path, extra: str = "") -> CampaignSpec:
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN + extra, "utf-8")
    return load_spec(path, Settings.load(environ={}))


def test_the_address_area_lies_inside_the_window() -> None:
    for x, y in (
        (ADDRESS_AREA.x, ADDRESS_AREA.y),
        (ADDRESS_AREA.x + ADDRESS_AREA.width, ADDRESS_AREA.y + ADDRESS_AREA.height),
    ):
        assert WINDOW.contains(x, y)
    # DIN C5/C4: 20 mm from the left, 45 mm down, 90 x 45 mm.
    assert ADDRESS_AREA.x >= 20
    assert ADDRESS_AREA.x + ADDRESS_AREA.width <= 110
    assert ADDRESS_AREA.y >= 45


def test_dates_are_written_in_the_letters_language() -> None:
    day = dt.date(2026, 3, 3)
    assert [format_date(day, lang) for lang in ("nb", "nn", "en")] == [
        "3. mars 2026",
        "3. mars 2026",
        "3 March 2026",
    ]


def test_an_address_block_as_posten_wants_it() -> None:
    assert ADDRESS.block("ERNST & YOUNG AS") == [
        "ERNST & YOUNG AS",
        "Postboks 1156 Sentrum",
        "0107 OSLO",
    ]
    abroad = PostalAddress(("Box 7000",), "103 86", "STOCKHOLM", "Sverige")
    assert abroad.block("NORDEA") == ["NORDEA", "Box 7000", "103 86 STOCKHOLM", "SVERIGE"]


def test_text_blocks_read_titles_headings_lists_and_paragraphs() -> None:
    text = (
        "# Tittel\n\nEt avsnitt\nmed linjeskift.\n\n## Overskrift\n\n"
        "1. Skriv https://x.no/kontroll\n2. Skriv ABCD-EFGH-JKMN\n\n- en\n- to\n"
    )
    assert text_blocks(text, ("ABCD-EFGH-JKMN", "https://x.no/kontroll")) == [
        {"k": "t", "r": [["Tittel", ""]]},
        {"k": "p", "r": [["Et avsnitt", ""], ["", "n"], ["med linjeskift.", ""]]},
        {"k": "h", "r": [["Overskrift", ""]]},
        {
            "k": "ol",
            "items": [
                [["Skriv ", ""], ["https://x.no/kontroll", "b"]],
                [["Skriv ", ""], ["ABCD-EFGH-JKMN", "b"]],
            ],
        },
        {"k": "ul", "items": [[["en", ""]], [["to", ""]]]},
    ]


def test_text_blocks_drop_control_characters() -> None:
    assert text_blocks("Hei\u202e på\x00 deg") == [{"k": "p", "r": [["Hei på deg", ""]]}]


def test_the_default_letters_carry_code_address_and_altinn(tmp_path: Path) -> None:
    texts = LetterTexts(spec(tmp_path))
    for lang, altinn in (("nb", "Samordnet registermelding"), ("nn", "Samordna registermelding")):
        text = texts.render(replace(LETTER, language=lang))
        assert "QDET-H290-W7BE" in text
        assert "https://www.politiet.no/varsel/kontroll" in text
        assert altinn in text
    english = texts.render(replace(LETTER, language="en", reason="bounced"))
    assert "E-mail to your business does not get through" in english
    assert set(default_letter_templates()) == {"nb", "nn", "en"}


@pytest.mark.parametrize(
    ("lang", "plural_you", "why"),
    [
        ("nb", r"\bdere\b", "Derfor får du dette som brev."),
        ("nn", r"\b(de|dykk|dykkar)\b", "Difor får du dette som brev."),
    ],
)
@pytest.mark.parametrize("reason", ["no_email", "bounced"])
def test_the_default_letter_says_du_throughout_as_the_email_does(
    tmp_path: Path, lang: str, plural_you: str, why: str, reason: str
) -> None:
    text = LetterTexts(spec(tmp_path)).render(replace(LETTER, language=lang, reason=reason))
    assert why in text
    assert re.search(plural_you, text, re.IGNORECASE) is None
    # The address is the business's, so the next e-mail reaches the business, not «you».
    assert "så kan vi nå " + ("virksomheten" if lang == "nb" else "verksemda") in text


def test_a_template_without_the_verify_address_is_refused(tmp_path: Path) -> None:
    texts = LetterTexts(spec(tmp_path, '[templates.nb]\nletter = "Kode {{ code }}"\n'))
    with pytest.raises(LetterTemplateError) as e:
        texts.render(LETTER)
    assert e.value.message == (
        "brevmalen (nb) viser ikke kontrolladressen: skriv {{ verify_url }} der den skal stå"
    )


def test_a_template_with_a_syntax_error_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LetterTemplateError) as e:
        LetterTexts(spec(tmp_path, '[templates.en]\nletter = "{% if %}"\n'))
    assert e.value.message.startswith("brevmalen (en), linje 1: ")


def test_a_template_cannot_reach_outside_its_sandbox(tmp_path: Path) -> None:
    source = "{{ code }} {{ verify_url }} {{ ''.__class__.__mro__ }}"
    texts = LetterTexts(spec(tmp_path, f'[templates.nb]\nletter = "{source}"\n'))
    with pytest.raises(LetterTemplateError) as e:
        texts.render(LETTER)
    assert e.value.message.startswith("brevmalen (nb): malfeil: ")


def test_one_batch_shares_equal_texts(tmp_path: Path) -> None:
    # The default text names the code, so each letter has its own; a text without the code
    # but with one in the layout would be shared. Here two letters share the same code.
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), "Postboks 1\n0101 Oslo")
    data = json.loads(renderer.data([LETTER, replace(LETTER, delivery_id=8)]))
    assert len(data["bodies"]) == 1
    assert [(x["id"], x["ref"], x["body"], x["date"]) for x in data["letters"]] == [
        (7, "1-7", 0, "3. mars 2026"),
        (8, "1-8", 0, "3. mars 2026"),
    ]
    assert data["letters"][0]["ret"] == "Returadresse: Oslo politidistrikt, Postboks 1, 0101 Oslo"
    assert data["sender"] == {
        "organisation": "Oslo politidistrikt",
        "lines": ["Postboks 1", "0101 Oslo"],
    }


def test_a_name_is_text_to_typst_never_markup(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), None)
    name = '#panic("x") *bold* $x$ <label> @ref \\ ]'
    out = tmp_path / "one.pdf"
    renderer.render([replace(LETTER, name=name)], out)
    from pypdf import PdfReader

    assert name in PdfReader(out).pages[0].extract_text()


def test_usual_addresses_fit_without_measuring_and_long_ones_are_measured() -> None:
    ret = "Returadresse: Oslo politidistrikt og NSR, Postboks 2094 Vika, 0125 Oslo"
    assert fits_at_10pt(ret, ADDRESS.block("ERNST & YOUNG AS"))
    long_name = "ERNST & YOUNG " + "REVISJON OG RÅDGIVNING " * 6 + "AS"
    assert not fits_at_10pt(ret, ADDRESS.block(long_name))


def test_a_word_longer_than_a_line_is_never_vouched_for_without_measuring() -> None:
    word = "REGNSKAPSFORVALTNINGSKONTORFELLESSKAPET"  # 39 letters: wider than 90 mm at 10 pt
    assert not fits_at_10pt("", [word + " AS", "0107 OSLO"])
    # Four words of 13 letters: 55 characters, yet four rows at 25 a row, not three.
    four = ["ABCDEFGHIJKLM " * 4, "Postboks 1156 Sentrum", "0107 OSLO"]
    assert not fits_at_10pt("Returadresse: " + "x" * 60, four)
    assert fits_at_10pt("", four)


def name_size(pdf: Path, name: str) -> float:
    from pypdf import PdfReader

    sizes: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip() == name:
            sizes.append(size * tm[0] * cm[0])

    PdfReader(pdf).pages[0].extract_text(visitor_text=visit)
    assert len(sizes) == 1
    return sizes[0]


def test_a_word_too_wide_for_the_window_is_set_smaller(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), None)
    name = "REGNSKAPSFORVALTNINGSKONTORFELLESSKAPET"  # one line, but only at 9 pt
    out = tmp_path / "one.pdf"
    renderer.render([replace(LETTER, name=name)], out)
    assert name_size(out, name) == 9


def test_a_word_too_wide_for_the_window_even_at_8pt_is_refused(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), None)
    name = "KONTORFELLESSKAPSADMINISTRASJONSSELSKAPETTILSKUDDSFORVALTNINGEN AS"
    with pytest.raises(AddressTooLongError) as e:
        renderer.render([replace(LETTER, name=name)], tmp_path / "x.pdf")
    assert (
        e.value.message
        == "brevet til org.nr. 976 389 387: adressen får ikke plass i konvoluttvinduet"
    )


def test_an_address_that_cannot_fit_the_window_is_refused(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), None)
    name = "ENORMT LANGT NAVN " * 40
    with pytest.raises(AddressTooLongError) as e:
        renderer.render([replace(LETTER, name=name)], tmp_path / "x.pdf")
    assert (
        e.value.message
        == "brevet til org.nr. 976 389 387: adressen får ikke plass i konvoluttvinduet"
    )
    assert not (tmp_path / "x.pdf").exists()


def test_the_page_count_is_read_from_typsts_page_tree(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), None)
    out = tmp_path / "two.pdf"
    renderer.render([LETTER, replace(LETTER, delivery_id=8)], out)
    assert page_count(out.read_bytes()) == 2


def test_misfits_are_the_letters_whose_address_fits_at_no_size(tmp_path: Path) -> None:
    renderer = Renderer(1, spec(tmp_path), dt.date(2026, 3, 3), "Postboks 2094 Vika\n0125 Oslo")
    letters = [
        LETTER,  # fits at 10 pt without measuring
        replace(LETTER, orgnr="1", name="REGNSKAPSFORVALTNINGSKONTORFELLESSKAPET"),  # at 9 pt
        replace(LETTER, orgnr="2", name="ENORMT LANGT NAVN " * 40),
        replace(
            LETTER,
            orgnr="3",
            name="KONTORFELLESSKAPSADMINISTRASJONSSELSKAPETTILSKUDDSFORVALTNINGEN AS",
        ),
    ]
    assert [x.orgnr for x in renderer.misfits(letters)] == ["2", "3"]
    assert renderer.misfits(letters[:1]) == []
    # What misfits() lets through, render() prints.
    renderer.render(letters[:2], tmp_path / "ok.pdf")
    for bad in letters[2:]:
        with pytest.raises(AddressTooLongError):
            renderer.render([bad], tmp_path / "bad.pdf")
