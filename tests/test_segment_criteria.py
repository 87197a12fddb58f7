"""Segment criteria read from files and options: checked, each mistake said in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from varsel.errors import BadCriteriaError
from varsel.segment_criteria import Criteria


def test_a_toml_file_names_the_key_of_a_bad_count(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("min_employees = 99999999999999999999\n", "utf-8")
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.from_file(path)
    assert "«min_employees» skal være et helt tall fra 0 til" in caught.value.message


def test_criteria_file_and_options_add_up(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[segment]\npolice_district = ["oslo"]\nmin_employees = 2\n', "utf-8")
    c = Criteria.build(path, {"exclude_form": ("ENK",), "min_employees": 5, "nace": ()})
    assert c == Criteria(police_districts=("oslo",), min_employees=5, exclude_forms=("ENK",))
    path.write_text('[segment]\npolice_distrikt = "oslo"\n', "utf-8")
    with pytest.raises(
        BadCriteriaError,
        match="ukjent kriterium «police_distrikt» \\(mente du «police_district»\\?\\)",
    ):
        Criteria.build(path, {})


def test_a_criteria_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    # A file that is not UTF-8 once reached the user as tomllib's traceback.
    path = tmp_path / "c.toml"
    path.write_bytes(b'kommuner = ["\xff"]\n')
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.build(path, {})
    assert caught.value.message == (
        f"{path}, linje 1: er ikke UTF-8 (byte 14); lagre filen som UTF-8"
    )
    with pytest.raises(BadCriteriaError) as missing:
        Criteria.build(tmp_path / "mangler.toml", {})
    assert missing.value.message == f"{tmp_path / 'mangler.toml'}: filen finnes ikke"


def test_a_key_outside_the_segment_table_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('min_employees = 5\n\n[segment]\npolice_district = ["oslo"]\n', "utf-8")
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.from_file(path)
    assert caught.value.message == (
        f"{path}: «min_employees» står utenfor [segment]; legg alle kriteriene i [segment] "
        "eller ingen av dem"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("police_district = ", "ugyldig verdi (på slutten av filen)"),
        (
            'police_district = ["oslo"\nmin_employees = 2\n',
            "en liste ([) er ikke lukket (linje 2, kolonne 1)",
        ),
        ("min_employees = 2\nmin_employees = 3\n", "samme nøkkel står to ganger"),
    ],
)
def test_a_toml_error_is_said_in_bokmal(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.from_file(path)
    assert caught.value.message.startswith(f"{path}: ugyldig TOML: {problem}")


@pytest.mark.parametrize("written", ["true", '"en"', "[1.5]"])
def test_a_criteria_files_campaign_numbers_are_checked(tmp_path: Path, written: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"exclude_reached_by = {written}\n", "utf-8")
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.from_file(path)
    assert f"{path}: «exclude_reached_by» skal være kampanjenumre" in caught.value.message
