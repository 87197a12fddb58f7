"""A campaign's definition, read and checked from its TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign_spec import CampaignError, load_spec
from varsel.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))


def test_pilot_example_parses(settings: Settings) -> None:
    spec = load_spec(ROOT / "examples" / "pilot.toml", settings)
    assert spec.criteria.police_districts == ("oslo",)
    assert spec.verify_url == "https://www.politiet.no/varsel/kontroll"
    assert set(spec.templates) == {"nb", "nn", "en"}
    assert not spec.allow_links


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[sender]", "[avsender]"), r"ukjent tabell \[avsender\]"),
        (('address = "sikkerhet@nsr-org.no"', 'address = "sikkerhet@nsr"'), "ikke en brukbar"),
        (('url = "https://www.politiet.no/rad.pdf"', 'url = "http://x.no/a"'), "https-adresse"),
        (('name = "Test"', "name = 3"), "«name» skal være tekst"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file(
    settings: Settings, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml().replace(*change), "utf-8")
    with pytest.raises(CampaignError, match=message) as caught:
        load_spec(path, settings)
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message


def test_a_file_that_is_not_toml_is_a_user_error(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[campaign\nname = ", "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert str(path) in caught.value.message
