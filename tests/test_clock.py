"""The store's time format."""

from __future__ import annotations

import re


def test_iso_clock_writes_what_the_store_keeps() -> None:
    from varsel.clock import IsoClock, utcnow_iso

    before, stamp, after = utcnow_iso(), IsoClock()(), utcnow_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert before[:-5] <= stamp[:-5] <= after[:-5]  # the same second, give or take one
