"""The error tree's messages: Bokmål text for the CLI that keeps its message id for the console."""

from __future__ import annotations

import errno
import pickle
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from varsel.errors import (
    N_,
    CampaignError,
    Text,
    UserError,
    VarselError,
    json_reason,
    listed,
    os_reason,
    quoted,
    read_user_file,
    read_user_text,
    redact_url,
    visible,
)


def test_a_text_is_its_bokmaal_message_and_keeps_its_id_and_values() -> None:
    text = Text("kampanje %(campaign)s er allerede godkjent av %(user)s", campaign=3, user="kari")
    assert text == "kampanje 3 er allerede godkjent av kari"
    assert isinstance(text, str)
    assert text.msgid == "kampanje %(campaign)s er allerede godkjent av %(user)s"
    assert text.params == {"campaign": 3, "user": "kari"}


def test_a_text_is_always_formatted_so_a_percent_sign_is_written_twice() -> None:
    assert Text("100 %% av %(n)s", n=7) == "100 % av 7"
    assert Text("100 %%") == "100 %"
    # A value is never formatted again: a % in a name is only a character.
    assert Text("brukeren «%(name)s» finnes ikke", name="a%(b)s") == (
        "brukeren «a%(b)s» finnes ikke"
    )


def test_an_error_gives_back_the_text_it_was_given_with_its_id() -> None:
    error = CampaignError(Text("kampanje %(campaign)s finnes ikke", campaign=7))
    assert error.message == "kampanje 7 finnes ikke"
    assert isinstance(error.message, Text)
    assert error.message.msgid == "kampanje %(campaign)s finnes ikke"
    assert error.message.params == {"campaign": 7}
    assert str(error) == "kampanje 7 finnes ikke"  # what the CLI and a traceback show


def test_an_error_with_plain_text_or_none_is_as_before() -> None:
    assert UserError("filen finnes ikke").message == "filen finnes ikke"
    assert not isinstance(UserError("filen finnes ikke").message, Text)
    assert UserError().message == "The input given to varsel is not usable."
    assert VarselError().exit_status == 1
    assert UserError().exit_status == 2


def test_a_text_survives_pickling_without_being_formatted_again() -> None:
    text = Text("%(where)s: %(value)r må være en https-adresse", where="skjemaet", value="a%d")
    copy = pickle.loads(pickle.dumps(text))  # noqa: S301 -- our own bytes
    assert (copy, copy.msgid, copy.params) == (
        text,
        text.msgid,
        {"where": "skjemaet", "value": "a%d"},
    )
    assert type(copy) is Text
    error = pickle.loads(pickle.dumps(CampaignError(text)))  # noqa: S301 -- our own bytes
    assert isinstance(error.message, Text)
    assert error.message.msgid == text.msgid


def test_listed_joins_items_with_commas_and_keeps_each_one() -> None:
    parts = listed([Text(N_("malene")), Text(N_("avsenderen"))])
    assert parts == "malene, avsenderen"
    assert parts.msgid == "%(i0)s, %(i1)s"
    assert [p.msgid for p in parts.params.values()] == ["malene", "avsenderen"]
    assert listed([Text(N_("utvalget"))]) == "utvalget"
    assert listed([]) == ""


def test_n_marks_a_message_id_and_gives_it_back() -> None:
    assert N_("kontoen «%(name)s» er deaktivert") == "kontoen «%(name)s» er deaktivert"


def test_a_text_needs_every_value_its_id_names() -> None:
    with pytest.raises(KeyError, match="campaign"):
        Text("kampanje %(campaign)s finnes ikke")


def test_a_users_file_that_cannot_be_read_is_a_one_line_error_of_the_callers_kind(
    tmp_path: Path,
) -> None:
    text = tmp_path / "t.txt"
    text.write_bytes("\ufeffæøå".encode())
    assert read_user_text(text, CampaignError, "utf-8-sig") == "æøå"
    assert read_user_file(text, CampaignError) == "\ufeffæøå".encode()
    text.write_bytes(b"\xff")
    with pytest.raises(CampaignError) as not_utf8:
        read_user_text(text, CampaignError)
    assert (
        not_utf8.value.message == f"{text}, linje 1: er ikke UTF-8 (byte 1); lagre filen som UTF-8"
    )
    text.write_bytes("first line\nsecond: æ".encode("latin-1"))
    with pytest.raises(CampaignError) as second_line:
        read_user_text(text, CampaignError, how="i Excel: «CSV UTF-8»")
    assert second_line.value.message == (
        f"{text}, linje 2: er ikke UTF-8 (byte 20); lagre filen som UTF-8 (i Excel: «CSV UTF-8»)"
    )
    with pytest.raises(CampaignError) as missing:
        read_user_file(tmp_path / "mangler", CampaignError)
    assert missing.value.message == f"{tmp_path / 'mangler'}: filen finnes ikke"
    with pytest.raises(CampaignError) as folder:
        read_user_file(tmp_path, CampaignError)
    assert folder.value.message == f"{tmp_path}: kan ikke leses (er en mappe)"


def reason_of(call: Callable[[], object]) -> str:
    try:
        call()
    except OSError as e:
        return os_reason(e)
    raise AssertionError("the call did not fail")


def test_the_operating_systems_common_reasons_are_said_in_bokmal(tmp_path: Path) -> None:
    (tmp_path / "fil").write_text("")
    assert reason_of((tmp_path / "mangler").read_bytes) == "finnes ikke"
    assert reason_of((tmp_path / "fil" / "x").mkdir) == "en del av stien er ikke en mappe"
    assert reason_of(tmp_path.read_bytes) == "er en mappe"
    with socket.socket() as bound:  # bound, never listening: a connection to it is refused
        bound.bind(("127.0.0.1", 0))
        address = bound.getsockname()
        with socket.socket() as client:
            assert reason_of(lambda: client.connect(address)) == "tilkoblingen ble avvist"


def test_a_reason_without_a_bokmal_text_keeps_the_systems_own() -> None:
    assert os_reason(OSError(errno.EMLINK, "Too many links")) == "Too many links"


def test_an_unknown_host_is_the_resolvers_reason_not_an_errno() -> None:
    # EAI_NONAME is -2: it must not be read as any errno.
    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert os_reason(unknown) == "finner ikke vertsnavnet"


def test_redact_url_hides_a_password_whole_and_leaves_the_rest() -> None:
    assert redact_url("smtp://ola:pw@relay.example:587") == "smtp://ola:***@relay.example:587"
    assert redact_url("postgresql://varsel:p@ss/w@db/varsel") == "postgresql://varsel:***@db/varsel"
    assert redact_url("imaps://bounces@mail.example/INBOX") == "imaps://bounces@mail.example/INBOX"
    assert redact_url("smtp://relay.example:25") == "smtp://relay.example:25"
    assert redact_url("varsel.db") == "varsel.db"


def test_a_toml_mistake_is_said_in_bokmal_with_its_place() -> None:
    import tomllib

    from varsel.errors import toml_problem

    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads('[campaign]\nname = "x"\nbroken\n')
    problem = toml_problem(caught.value)
    assert problem.endswith("(linje 3, kolonne 7)")
    assert "Expected" not in problem
    assert "Invalid" not in problem


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            '[campaign]\nname = "Sikkerhetsråd\n',
            "tekst uten avsluttende anførselstegn (linje 2, kolonne 22)",
        ),
        ('name = "a\x01b"\n', "ugyldig tegn i tekst (linje 1, kolonne 10)"),
        ("[sender]\n[sender]\n", "samme tabell står to ganger (linje 2, kolonne 8)"),
    ],
)
def test_common_toml_mistakes_are_named(toml: str, problem: str) -> None:
    import tomllib

    from varsel.errors import toml_problem

    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(toml)
    assert toml_problem(caught.value) == problem


def test_a_quoted_value_is_in_guillemets_with_what_cannot_be_seen_escaped() -> None:
    assert quoted("nsr") == "«nsr»"
    assert quoted("blåbær.no") == "«blåbær.no»"  # letters are letters
    # A line break would break the one line; a bidi override would reorder what follows.
    assert quoted("a\nBcc: x\x00\u202e") == "«a\\nBcc: x\\x00\\u202e»"
    assert visible("Oslo\tpoliti") == "Oslo\\tpoliti"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"{bad", "uventet tegn, ventet en nøkkel i anførselstegn"),
        (b"[1 2]", "uventet tegn, ventet «,» eller «]»"),
        (b'{"a" 1}', "uventet tegn, ventet «:» etter nøkkelen"),
        (b'{"a":tru}', "ugyldig verdi, ventet «true»"),
        (b"[1,", "teksten slutter for tidlig"),
        (b"[1]x", "mer tekst etter slutten"),
        (b'"\x01"', "kontrolltegn i en tekst"),
    ],
)
def test_the_json_parsers_reasons_are_said_in_bokmal(text: bytes, reason: str) -> None:
    import orjson

    with pytest.raises(orjson.JSONDecodeError) as e:
        orjson.loads(text)
    assert json_reason(e.value.msg) == reason


def test_a_json_reason_we_do_not_know_is_left_out_rather_than_said_in_english() -> None:
    assert json_reason("something new, expected 'x'") == ""
