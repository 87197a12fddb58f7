"""Building messages as the sender's worker processes do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from varsel import codes
from varsel.builder import SUPPRESSED, Job, build_jobs, make_factory
from varsel.claimed_units import UnitToSend
from varsel.message import MessageSpec
from varsel.testing import sample_spec


def spec() -> MessageSpec:
    return sample_spec(
        campaign_id=7,
        from_name="NSR",
        reply_to=None,
        document_title="Råd",
        document_url="https://www.politiet.no/rad.pdf",
        fields={},
    )


def test_jobs_are_built_with_the_message_id_they_carry() -> None:
    code = codes.normalise(codes.new_code())
    assert code is not None
    jobs = [(41, "post@bakeri.no", "nn", code, "tok41", (("912345678", "BAKERI AS", "3201"),))]
    [(data, message_id, _)] = build_jobs(make_factory(spec(), []), jobs)
    assert message_id.startswith("<41.")
    assert f"\r\nMessage-ID: {message_id}\r\n".encode() in data
    assert codes.format_code(code).encode() in data
    assert b"Til BAKERI AS (org.nr. 912 345 678)\r\n" in data


def test_a_build_worker_imports_nothing_of_the_sender() -> None:
    # It reads units from the SQLite file with sqlite3 itself (claimed_units), not the store's
    # modules.
    sender_only = "{'asyncio', 'psycopg', 'numpy', 'varsel.db', 'varsel.outbox'}"
    probe = f"import sys, varsel.builder; print(sorted({sender_only} & set(sys.modules)))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def test_jobs_without_units_have_them_read_and_all_suppressed_ones_are_not_built() -> None:
    codes_ = [codes.normalise(codes.new_code()) or "" for _ in range(3)]
    jobs: list[Job] = [
        (1, "post@bakeri.no", "nb", codes_[0], "t1", None),
        (2, "post@smie.no", "nb", codes_[1], "t2", (("923456789", "SMIE AS", None),)),
        (3, "post@sag.no", "en", codes_[2], "t3", None),
    ]
    asked: list[list[int]] = []

    def read(ids: list[int]) -> dict[int, list[UnitToSend]]:
        asked.append(ids)
        return {
            1: [("912345678", "BAKERI AS", "0301", False), ("934567890", "KAFE AS", None, True)],
            3: [("945678901", "SAG AS", "3201", True)],
        }

    one, two, three = build_jobs(make_factory(spec(), []), jobs, None, read)
    assert asked == [[1, 3]]  # only the jobs that came without their units, in one read
    assert three is SUPPRESSED
    assert isinstance(one, tuple)  # a built message
    assert isinstance(two, tuple)
    assert b"Til BAKERI AS (org.nr. 912 345 678)\r\n" in one[0]
    assert b"KAFE AS" not in one[0]  # a suppressed unit is not named
    assert b"Til SMIE AS (org.nr. 923 456 789)\r\n" in two[0]


def test_jobs_without_units_and_nothing_to_read_them_with_are_refused() -> None:
    code = codes.normalise(codes.new_code()) or ""
    with pytest.raises(RuntimeError, match="nothing to read"):
        build_jobs(make_factory(spec(), []), [(1, "post@bakeri.no", "nb", code, "t", None)])
