"""Pages from slots: the genuine page is the text Jinja makes, for any values."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import campaign_toml
from varsel.campaign import CampaignSpec
from varsel.campaign_spec import load_spec
from varsel.config import Settings
from varsel.verify import Found, UnitName
from varsel.web import genuine
from varsel.web.page_slots import NotCompilable, Pages, Refuse, Stand, compile_page
from varsel.web.templating import environment

HOSTILE = st.text(alphabet=st.sampled_from("aZ0 <>&'\"%+/?#=;\\\n\tæøå\u2028"), max_size=12)
ISO = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # as the store keeps time
)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> CampaignSpec:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "rad.pdf").write_bytes(b"%PDF-1.4\n")
    path = folder / "c.toml"
    path.write_text(campaign_toml(document='file = "rad.pdf"\n'), "utf-8")
    return load_spec(path, Settings.load(environ={}, dkim_key_dir=str(folder / "keys")))


def found(
    spec: CampaignSpec,
    code: str,
    sent_at: str | None,
    units: list[tuple[str, str]],
    channel: str = "email",
    language: str = "nb",
) -> Found:
    names = tuple(UnitName(orgnr, name) for orgnr, name in units)
    return Found(7, 3, "Test", spec, "post@example.no", sent_at, names, code, channel, language)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    language=st.sampled_from(["nb", "nn", "en"]),
    code=HOSTILE,
    sent_at=st.none() | ISO,
    units=st.lists(st.tuples(HOSTILE, HOSTILE), max_size=3),
    path=HOSTILE,
    here=HOSTILE,
    organisation=HOSTILE,
    with_file=st.booleans(),
    channel=st.sampled_from(["email", "letter", "altinn"]),  # deliveries.channel
    sent_in=st.sampled_from(["nb", "nn", "en"]),  # the message's language, not the page's
    from_name=HOSTILE,
    root=st.sampled_from(["", "/varsel", "/a&b"]),  # the site's root: "" when it has no path
)
def test_the_compiled_genuine_page_is_the_page_jinja_makes(
    spec: CampaignSpec,
    language: str,
    code: str,
    sent_at: str | None,
    units: list[tuple[str, str]],
    path: str,
    here: str,
    organisation: str,
    with_file: bool,
    channel: str,
    sent_in: str,
    from_name: str,
    root: str,
) -> None:
    changed = dataclasses.replace(
        spec,
        organisation=organisation,
        from_name=from_name,
        document_file=spec.document_file if with_file else None,
    )
    shown = found(changed, code, sent_at, units, channel, sent_in)
    page = genuine.compiled(language, shown, root)
    assert page.fill(genuine.values(shown, path, here)) == genuine.jinja_text(
        language, shown, path, here, root
    )


def test_pages_are_compiled_once_per_shape_and_again_for_a_new_version(
    spec: CampaignSpec,
) -> None:
    compiled: list[int] = []

    def compile() -> object:
        compiled.append(1)
        return genuine.compiled("nb", shown)

    pages = Pages()
    shown = found(spec, "ABCD-EFGH-JKMN", None, [("123456789", "A & B")])

    def values() -> dict[object, object]:
        return genuine.values(shown, "/kontroll", "/kontroll?lang=")

    def jinja() -> str:
        return genuine.jinja_text("nb", shown, "/kontroll", "/kontroll?lang=")

    for _ in range(3):
        assert pages.page(("nb", 1), spec, compile, values, jinja) == jinja()  # type: ignore[arg-type]
    assert len(compiled) == 1
    newer = dataclasses.replace(spec)  # a new version: another parsed definition
    pages.page(("nb", 1), newer, compile, values, jinja)  # type: ignore[arg-type]
    assert len(compiled) == 2


def test_a_page_that_differs_from_jinja_on_its_first_use_is_never_served() -> None:
    pages = Pages()

    def compile() -> object:
        return compile_page(lambda outputs: f"<p>{Stand('v', outputs)}</p>")

    shown = pages.page("s", None, compile, lambda: {"v": "x"}, lambda: "<p>X</p>")  # type: ignore[arg-type]
    assert shown is None
    again = pages.page("s", None, compile, lambda: {"v": "x"}, lambda: "<p>x</p>")  # type: ignore[arg-type]
    assert again is None


def render_with(source: str, **values: object) -> str:
    env = environment("nb")
    template = env.from_string(source)
    return template.render(**values)


@pytest.mark.parametrize(
    "source",
    [
        "{{ v|upper }}",
        "{% if v == 'a' %}a{% endif %}",
        "{{ v[0] }}",
        "{{ v|length }}",
        "{{ csrf }}",
        "{{ v.missing }}",
    ],
)
def test_a_template_that_does_more_than_write_a_value_out_is_not_compiled(source: str) -> None:
    def render(outputs: list[Stand]) -> str:
        return render_with(source, v=Stand("v", outputs), csrf=Refuse())

    with pytest.raises(NotCompilable):
        compile_page(render)


def test_filters_that_know_stand_ins_are_applied_when_filled() -> None:
    def render(outputs: list[Stand]) -> str:
        return render_with(
            "<a href='?k={{ v|urlencode }}'>{{ v }}</a> {{ n|orgnr }} {{ d|date }} {{ v|safe }}",
            v=Stand("v", outputs),
            n=Stand("n", outputs),
            d=Stand("d", outputs),
        )

    values = {"v": "<a b>", "n": "123456789", "d": "2026-01-05T23:30:00.000Z"}
    expected = render_with(
        "<a href='?k={{ v|urlencode }}'>{{ v }}</a> {{ n|orgnr }} {{ d|date }} {{ v|safe }}",
        **values,
    )
    assert compile_page(render).fill(values) == expected
