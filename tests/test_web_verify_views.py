"""verify_views: the names the verify page shares with the rest of the library."""

from __future__ import annotations

from varsel.erasure import ERASED_NAME
from varsel.web.verify_views import ERASED


def test_the_page_names_an_erased_business_as_erasure_does() -> None:
    assert ERASED == ERASED_NAME
