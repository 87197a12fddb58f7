"""Building messages as the sender's worker processes do."""

from __future__ import annotations

import subprocess
import sys

from varsel import codes
from varsel.builder import build_jobs, make_factory
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
    sender_only = "{'asyncio', 'sqlite3', 'psycopg', 'numpy'}"
    probe = f"import sys, varsel.builder; print(sorted({sender_only} & set(sys.modules)))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"
