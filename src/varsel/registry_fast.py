"""The fast path for JSON dumps: DuckDB reads and extracts the kept columns in C.

`unit.extract` is the definition of the columns; `projection` below is its translation into
DuckDB SQL for records of the registry's own shape (strings where the registry writes strings,
booleans, integers, objects). A record of any other shape is marked `odd`, and the importer
then reads the whole file with the Python extractor instead, so the SQL never has to guess.
tests/test_registry_fast.py checks that both give the same rows and hashes, on the real
fixtures and on generated records.

DuckDB's result goes to a stage with every kept column, the record's position, its reject
reason and the hash: a private SQLite file written through the ADBC driver (Arrow in, no
Python per row) that the store attaches, or a CSV file that PostgreSQL reads with COPY.
E-mail addresses, the one field that needs Python (email-validator), are parsed from the
stage afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import contacts, municipality, unit
from varsel.db import Database
from varsel.duckdb_interrupt import interruptible
from varsel.dump import Kind
from varsel.progress import ProgressCallback

# Stage columns: position, reject code, the organisation number as written, the kept columns
# (reach provisional: phone_only or postal_only until the e-mail addresses are parsed), hash.
STAGE_COLUMNS: tuple[str, ...] = ("idx", "reject", "raw_orgnr", *unit.RECORD_COLUMNS, "record_hash")
ODD = "odd"  # reject code: a record the SQL does not translate; the file goes the Python way
STAGE_TABLE = {"sqlite": "fast_stage.s", "postgresql": "fast_stage"}  # SQLite: Stage.schema
# A dump file smaller than this goes the Python way: starting DuckDB and planning the
# extraction cost ~0.3 s on a quiet machine, more than the Python reader takes for the ~5,000
# records of a 1 MiB json.gz (measured: 200 records 0.05 s against 0.8-1.5 s under load; the
# two about even at 10,000 records, 2 MB).
SMALL_FILE = 1 << 20

# What str.strip strips: the characters whose str.isspace() is true (a test checks it against
# Python's own; computing it here cost every process that imports the registry ~0.4 s).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
_WS_CHARS = "||".join(f"chr({ord(c)})" for c in WHITESPACE)
# unit.clean_text: control characters become spaces, runs of spaces and NBSP one space.
_CONTROL = r"[\x00-\x1f\x7f-\x9f\x{200b}-\x{200f}\x{2028}\x{2029}\x{feff}]"
_SPACES = r"[ \x{a0}]{2,}|\x{a0}"
_NEEDS_CLEANING = f"{_CONTROL}|  |\\x{{a0}}|^{_WS}|{_WS}$|^$"
_NEEDS_STRIP = f"^{_WS}|{_WS}$"
# A JSON array of strings and nulls, as DuckDB writes JSON (compact).
_STRING = r'"(?:[^"\\]|\\.)*"|null'
_STRING_ARRAY = rf"\[(?:(?:{_STRING})(?:,(?:{_STRING}))*)?\]"

_ADDRESS = (
    "STRUCT(adresse JSON, postnummer JSON, poststed JSON, land JSON, landkode JSON, "
    "kommunenummer JSON)"
)
_CODE = "STRUCT(kode JSON)"
_READ: dict[str, str] = {
    "organisasjonsnummer": "JSON",
    "navn": "JSON",
    "organisasjonsform": _CODE,
    "respons_klasse": "VARCHAR",  # only equality with "Underenhet" matters
    "overordnetEnhet": "JSON",
    "forretningsadresse": _ADDRESS,
    "beliggenhetsadresse": _ADDRESS,
    "postadresse": _ADDRESS,
    "naeringskode1": _CODE,
    "naeringskode2": _CODE,
    "naeringskode3": _CODE,
    "antallAnsatte": "JSON",
    "harRegistrertAntallAnsatte": "JSON",
    "institusjonellSektorkode": _CODE,
    "konkurs": "JSON",
    "underAvvikling": "JSON",
    "underTvangsavviklingEllerTvangsopplosning": "JSON",
    "slettedato": "JSON",
    "nedleggelsesdato": "JSON",
    "maalform": "JSON",
    "epostadresse": "JSON",
    "telefon": "JSON",
    "mobil": "JSON",
    "hjemmeside": "JSON",
}
_BOOLEANS = (
    "harRegistrertAntallAnsatte",
    "konkurs",
    "underAvvikling",
    "underTvangsavviklingEllerTvangsopplosning",
)
_STRINGS: tuple[str, ...] = ("navn", "slettedato", "nedleggelsesdato", "maalform", "epostadresse")
_STRINGS += ("telefon", "mobil", "hjemmeside")
_CODES: tuple[str, ...] = ("organisasjonsform", "naeringskode1", "naeringskode2", "naeringskode3")
_CODES += ("institusjonellSektorkode",)
_ADDRESS_STRINGS = ("postnummer", "poststed", "land", "landkode", "kommunenummer")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_string(json: str) -> str:
    return f"({json} IS NULL OR starts_with({json}, '\"'))"


def _text(json: str) -> str:
    return f"({json}->>'$')"


def _strip(text: str) -> str:
    """str.strip(): the test first, because trim() with a set of characters is slow."""
    return (
        f"CASE WHEN regexp_matches({text}, {_lit(_NEEDS_STRIP)}) "
        f"THEN trim({text}, {_WS_CHARS}) ELSE {text} END"
    )


def _clean(text: str) -> str:
    """unit.clean_text of a string."""
    cleaned = (
        f"nullif(trim(regexp_replace(regexp_replace({text}, {_lit(_CONTROL)}, ' ', 'g'), "
        f"{_lit(_SPACES)}, ' ', 'g'), {_WS_CHARS}), '')"
    )
    return (
        f"CASE WHEN regexp_matches({text}, {_lit(_NEEDS_CLEANING)}) THEN {cleaned} ELSE {text} END"
    )


def _code(key: str) -> str:
    """unit._code: the object's kode, stripped, or NULL."""
    return f"nullif({_strip(_text(key + '.kode'))}, '')"


def _flag(json: str) -> str:
    return f"coalesce({json} = 'true', false)"


def _lines(address: str) -> str:
    """unit._lines: the address lines cleaned, empty ones dropped, joined by newlines."""
    return (
        f"nullif(array_to_string(list_filter(list_transform(from_json({address}.adresse, "
        f"'[\"VARCHAR\"]'), lambda x: {_clean('x')}), lambda x: x IS NOT NULL), chr(10)), '')"
    )


@functools.cache
def _municipality_map() -> str:
    """A MAP literal: every 4-digit number that has a 2024 number, to that number."""
    pairs = [(f"{n:04d}", municipality.current_number(f"{n:04d}")) for n in range(10000)]
    return "MAP {" + ", ".join(f"{_lit(n)}: {_lit(c)}" for n, c in pairs if c is not None) + "}"


def _municipality_key(json: str) -> str:
    """The number unit._current_municipality looks up: stripped, 3 or 4 digits, zero-filled."""
    raw, stripped = _text(json), _strip(_text(json))
    return (
        f"CASE WHEN regexp_full_match({raw}, '[0-9]{{4}}') THEN {raw} "
        f"WHEN regexp_full_match({stripped}, '[0-9]{{3,4}}') THEN lpad({stripped}, 4, '0') END"
    )


def _municipality(json: str) -> str:
    """unit._current_municipality of a kommunenummer, NULL when empty.

    A MAP lookup rather than a join: a join made DuckDB hold the whole result in memory.
    """
    raw = _text(json)
    current = f"{_municipality_map()}[{_municipality_key(json)}]"
    return f"CASE WHEN {raw} IS NULL OR {raw} = '' THEN NULL ELSE coalesce({current}, {raw}) END"


def _valid_orgnr(orgnr: str) -> str:
    """unit.valid_orgnr: nine ASCII digits with a correct MOD11 check digit."""
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    total = " + ".join(
        f"{w} * TRY_CAST({orgnr}[{i + 1}] AS INTEGER)" for i, w in enumerate(weights)
    )
    check = f"(11 - ({total}) % 11) % 11"
    return (
        f"coalesce(regexp_full_match({orgnr}, '[0-9]{{9}}') AND {check} <> 10 "
        f"AND {check} = TRY_CAST({orgnr}[9] AS INTEGER), false)"
    )


def _hash(values: dict[str, str], types: dict[str, str]) -> str:
    """unit.record_hash in SQL."""
    parts = []
    for column in unit.HASHED_COLUMNS:
        v = values[column]
        if types.get(column) == "bool":
            parts.append(f"CASE WHEN {v} THEN 'T' ELSE 'F' END")
        elif types.get(column) == "int":
            parts.append(f"CASE WHEN {v} IS NULL THEN 'N' ELSE concat('I', {v}, ';') END")
        else:
            # One concat per value: a quarter cheaper than a chain of || (fewer strings made).
            parts.append(
                f"CASE WHEN {v} IS NULL THEN 'N' ELSE concat('S', strlen({v}), ':', {v}) END"
            )
    return f"CAST(('0x' || left(md5(concat({', '.join(parts)})), 16))::UBIGINT >> 1 AS BIGINT)"


def projection(path: Path, kind: Kind) -> str:
    """DuckDB SQL: one row per record of the JSON dump at path, with STAGE_COLUMNS."""
    sub = kind is Kind.UNDERENHETER
    business = "beliggenhetsadresse" if sub else "forretningsadresse"
    checks = [_is_string(k) for k in _STRINGS]
    checks += [_is_string(f"{k}.kode") for k in _CODES]
    for address in ("forretningsadresse", "beliggenhetsadresse", "postadresse"):
        checks += [_is_string(f"{address}.{f}") for f in _ADDRESS_STRINGS]
        checks.append(
            f"({address}.adresse IS NULL OR "
            f"regexp_full_match({address}.adresse, {_lit(_STRING_ARRAY)}))"
        )
    checks += [f"({k} IS NULL OR {k} IN ('true', 'false'))" for k in _BOOLEANS]
    checks.append("(antallAnsatte IS NULL OR regexp_full_match(antallAnsatte, '-?[0-9]{1,18}'))")
    # A record with no organisasjonsnummer may be a JSON null in the array, which the Python
    # reader refuses as a whole: leave it to that reader.
    checks.append("organisasjonsnummer IS NOT NULL")

    employees = "TRY_CAST(antallAnsatte AS BIGINT)"
    values = {
        "orgnr": "orgnr",
        "kind": _lit("underenhet" if sub else "enhet"),
        "parent_orgnr": (
            f"CASE WHEN starts_with(overordnetEnhet, '\"') "
            f"THEN {_strip(_text('overordnetEnhet'))} END"
        ),
        "name": "name",
        "form": "form",
        "municipality": _municipality(f"{business}.kommunenummer"),
        "postal_municipality": _municipality("postadresse.kommunenummer"),
        "country": _text(f"{business}.landkode"),
        "nace1": _code("naeringskode1"),
        "nace2": _code("naeringskode2"),
        "nace3": _code("naeringskode3"),
        "employees": employees,
        "has_employees": (
            f"({_flag('harRegistrertAntallAnsatte')} OR coalesce({employees} <> 0, false))"
        ),
        "sector": _code("institusjonellSektorkode"),
        "bankrupt": _flag("konkurs"),
        "liquidating": _flag("underAvvikling"),
        "forced_dissolution": _flag("underTvangsavviklingEllerTvangsopplosning"),
        "deleted_date": (
            f"CASE WHEN {_text('slettedato')} <> '' THEN {_text('slettedato')} "
            f"ELSE {_text('nedleggelsesdato')} END"
        ),
        "maalform": _text("maalform"),
        "addr_lines": _lines(business),
        "addr_postcode": _clean(_text(f"{business}.postnummer")),
        "addr_city": _clean(_text(f"{business}.poststed")),
        "addr_country": _clean(_text(f"{business}.land")),
        "post_lines": _lines("postadresse"),
        "post_postcode": _clean(_text("postadresse.postnummer")),
        "post_city": _clean(_text("postadresse.poststed")),
        "post_country": _clean(_text("postadresse.land")),
        "post_countrycode": _text("postadresse.landkode"),
        "email": _clean(_text("epostadresse")),
        "phone": "phone",
        "mobile": "mobile",
        "website": _clean(_text("hjemmeside")),
        "reach": (
            "CASE WHEN phone IS NOT NULL OR mobile IS NOT NULL "
            "THEN 'phone_only' ELSE 'postal_only' END"
        ),
    }
    types = {"employees": "int", "has_employees": "bool", "bankrupt": "bool"}
    types |= {"liquidating": "bool", "forced_dissolution": "bool"}
    is_sub = (
        "(beliggenhetsadresse IS NOT NULL OR form IN ('BEDR', 'AAFY') "
        "OR coalesce(respons_klasse = 'Underenhet', false))"
    )
    reject = (
        f"CASE WHEN NOT ({' AND '.join(checks)}) THEN '{ODD}' "
        "WHEN NOT starts_with(organisasjonsnummer, '\"') THEN 'no_orgnr' "
        f"WHEN NOT {_valid_orgnr('orgnr')} THEN 'bad_orgnr' "
        "WHEN name IS NULL THEN 'no_name' "
        "WHEN form IS NULL THEN 'no_form' "
        f"WHEN {is_sub} <> {'true' if sub else 'false'} THEN 'wrong_kind' "
        f"WHEN {employees} < 0 THEN 'negative_employees' END"
    )
    read = "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in _READ.items()) + "}"
    columns = ",\n  ".join(f"{values[c]} AS {c}" for c in unit.RECORD_COLUMNS)
    return f"""
WITH r AS (
  SELECT *, ordinality - 1 AS idx,
    {_strip(_text("organisasjonsnummer"))} AS orgnr,
    {_clean(_text("navn"))} AS name,
    {_code("organisasjonsform")} AS form,
    {_clean(_text("telefon"))} AS phone,
    {_clean(_text("mobil"))} AS mobile
  FROM read_json({_lit(str(path))}, format = 'array', columns = {read}) WITH ORDINALITY
), v AS (
  SELECT idx, {reject} AS reject,
  CASE WHEN starts_with(organisasjonsnummer, '"') THEN {_text("organisasjonsnummer")} END
    AS raw_orgnr,
  {columns}
  FROM r
)
SELECT *, {_hash({c: c for c in unit.RECORD_COLUMNS}, types)} AS record_hash FROM v
"""


def reject_reason(code: str, orgnr: str | None, kind: Kind, employees: int | None = None) -> str:
    """The reason unit.extract gives for a reject code of the projection."""
    if code == "no_orgnr":
        return "mangler organisasjonsnummer"
    if code == "bad_orgnr":
        return f"ugyldig organisasjonsnummer {orgnr!r} (kontrollsiffer)"
    if code == "no_name":
        return "mangler navn"
    if code == "no_form":
        return "mangler organisasjonsform"
    if code == "wrong_kind":
        what = "en hovedenhet" if kind is Kind.UNDERENHETER else "en underenhet"
        return f"posten er {what}, men filen inneholder {kind.value}"
    if code == "negative_employees":
        return f"antallAnsatte er negativt: {employees}"
    raise ValueError(f"unknown reject code {code!r}")


# -- building the stage ----------------------------------------------------------------


class FastPathUnavailable(Exception):
    """DuckDB could not read the file; the Python reader will, or will say what is wrong."""


@dataclass
class Stage:
    """A dump's rows, extracted by DuckDB, in a temporary file."""

    path: Path
    rows: int
    emails: EmailParse | None = None  # started once the stage is complete (SQLite)
    schema: str = "fast_stage"  # the SQLite store's name for the attached stage file


Rows = list[tuple[Any, ...]]


CHUNK = 1 << 16  # stage records per step of the load: e-mail parsing runs one step ahead


def parse_emails(rows: Iterable[tuple[Any, ...]]) -> tuple[Rows, Rows]:
    """(idx, orgnr) of the records with a usable address, and the contact rows with idx.

    rows are (idx, orgnr, form, email) of staged records that have an e-mail field.
    """
    usable: Rows = []
    contact_rows: Rows = []
    for idx, orgnr, form, email in rows:
        addresses = contacts.parse_addresses(email)
        if any(a.usable for a in addresses):
            usable.append((idx, orgnr))
        contact_rows.extend((*c, idx) for c in unit.contact_rows(orgnr, form, addresses))
    return usable, contact_rows


class EmailParse:
    """The stage's e-mail fields parsed on a thread of their own, CHUNK records at a time.

    Parsing is Python (email-validator's rules) and holds the GIL; the store meanwhile copies
    the previous chunk of the stage in SQLite, which releases it, so the two share the two
    cores. The thread reads the stage file through its own read-only connection and stays
    at most two chunks ahead, so memory does not grow with the file.
    """

    def __init__(self, stage: Path, rows: int) -> None:
        self._queue: queue.Queue[tuple[int, int, Rows, Rows] | BaseException | None]
        self._queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(stage, rows), name="varsel-email-parse", daemon=True
        )
        self._thread.start()

    def _run(self, stage: Path, rows: int) -> None:
        try:
            con = sqlite3.connect(f"file:{stage}?mode=ro", uri=True)
            try:
                for lo in range(0, rows, CHUNK):
                    hi = min(lo + CHUNK, rows)
                    found = con.execute(
                        "SELECT idx, orgnr, form, email FROM s WHERE idx >= ? AND idx < ? "
                        "AND reject IS NULL AND email IS NOT NULL ORDER BY idx",
                        (lo, hi),
                    )
                    if not self._put((lo, hi, *parse_emails(found))):
                        return
            finally:
                con.close()
        except BaseException as e:  # handed to the importing thread by chunks()
            self._put(e)
            return
        self._put(None)

    def _put(self, item: tuple[int, int, Rows, Rows] | BaseException | None) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def chunks(self) -> Iterator[tuple[int, int, Rows, Rows]]:
        """(first idx, end idx, usable, contact rows) of each chunk, in order."""
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        """Stop the thread (after its current chunk) and wait for it."""
        self._stop.set()
        self._thread.join()


def _duckdb() -> Any:
    import duckdb

    return duckdb.connect(config={"preserve_insertion_order": True})


@contextlib.contextmanager
def _watch(con: Any, size: int, progress: ProgressCallback) -> Iterator[None]:
    """Report DuckDB's progress through the file while a query runs in this thread."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.25):
            with contextlib.suppress(Exception):
                percent = float(con.query_progress())
                if percent >= 0:
                    progress(int(size * percent / 100), size, 0)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def stage_sqlite(path: Path, kind: Kind, workdir: Path, progress: ProgressCallback) -> Stage:
    """Extract the dump into a new SQLite file (table s) through ADBC; no Python per row."""
    import adbc_driver_manager
    import adbc_driver_sqlite
    import duckdb
    from adbc_driver_manager import AdbcConnection, AdbcStatement

    target = workdir / "stage.db"
    con = _duckdb()
    database = adbc_driver_sqlite.connect(f"file:{target}")
    conn = AdbcConnection(database)
    statements: list[Any] = []

    def statement() -> Any:
        statements.append(AdbcStatement(conn))
        return statements[-1]

    try:
        # A private file deleted afterwards: nothing to recover after a crash.
        for sql in (
            "PRAGMA journal_mode = OFF",
            "PRAGMA synchronous = OFF",
            f"CREATE TABLE s (idx INTEGER PRIMARY KEY, {', '.join(STAGE_COLUMNS[1:])})",
        ):
            setup = statement()
            setup.set_sql_query(sql)
            setup.execute_update()
        ingest = statement()
        ingest.set_options(
            **{"adbc.ingest.target_table": "s", "adbc.ingest.mode": "adbc.ingest.mode.append"}
        )
        try:
            with interruptible(con):
                ingest.bind_stream(con.sql(projection(path, kind)).__arrow_c_stream__())
                with _watch(con, path.stat().st_size, progress):
                    rows = ingest.execute_update()
        except (duckdb.Error, adbc_driver_manager.Error) as e:
            # DuckDB's errors while streaming reach us through the ADBC driver.
            raise FastPathUnavailable(str(e)) from None
    finally:
        for st in statements:
            st.close()
        conn.close()
        database.close()
        con.close()
    return Stage(target, rows)


def stage_csv(path: Path, kind: Kind, workdir: Path, progress: ProgressCallback) -> Stage:
    """Extract the dump into a CSV file for PostgreSQL's COPY."""
    import duckdb

    target = workdir / "stage.csv"
    con = _duckdb()
    try:
        with interruptible(con), _watch(con, path.stat().st_size, progress):
            rows = con.execute(
                f"COPY ({projection(path, kind)}) TO {_lit(str(target))} (FORMAT csv, HEADER false)"
            ).fetchone()
    except duckdb.Error as e:
        raise FastPathUnavailable(str(e)) from None
    finally:
        con.close()
    return Stage(target, int(rows[0]) if rows else 0)


@contextlib.contextmanager
def staged(
    db: Database, path: Path, kind: Kind, progress: ProgressCallback, schema: str = "fast_stage"
) -> Iterator[Stage | None]:
    """The dump extracted by DuckDB, attached to a SQLite store; None when DuckDB cannot.

    Runs outside the import's transaction: it reads the file and writes only temporary files
    (SQLite cannot ATTACH inside a transaction). schema: the attached file's name, one per
    file when several are staged for one transaction; past SQLite's limit on attached files
    the file goes the Python way (None).
    """
    workdir = Path(tempfile.mkdtemp(prefix="varsel-import-"))
    attached = False
    emails: EmailParse | None = None
    try:
        try:
            if db.dialect == "sqlite":
                stage = stage_sqlite(path, kind, workdir, progress)
                try:
                    db.execute(f"ATTACH DATABASE ? AS {schema}", (str(stage.path),))
                except sqlite3.OperationalError as e:  # too many attached databases
                    raise FastPathUnavailable(str(e)) from None
                attached = True
                stage.schema = schema
                emails = EmailParse(stage.path, stage.rows)
            else:
                stage = stage_csv(path, kind, workdir, progress)
        except FastPathUnavailable:
            yield None
            return
        stage.emails = emails
        yield stage
    finally:
        if emails is not None:
            emails.cancel()
        if attached:
            db.execute(f"DETACH DATABASE {schema}")
        shutil.rmtree(workdir, ignore_errors=True)


def load_stage(db: Database, stage: Stage) -> str:
    """Make the stage a table of the store (PostgreSQL: COPY into a temporary table); its name."""
    if db.dialect == "sqlite":
        return f"{stage.schema}.s"
    table = STAGE_TABLE["postgresql"]
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(
        f"CREATE TEMP TABLE {table} AS SELECT CAST(NULL AS BIGINT) AS idx, "
        f"CAST(NULL AS TEXT) AS reject, CAST(NULL AS TEXT) AS raw_orgnr, "
        f"{', '.join(unit.RECORD_COLUMNS)}, record_hash FROM units WHERE 1 = 0"
    )
    conn = db.raw_connection()
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy,
        stage.path.open("rb") as f,
    ):
        while block := f.read(1 << 20):
            copy.write(block)
    return table


def drop_stage(db: Database, table: str) -> None:
    """Drop the temporary stage table (PostgreSQL); the SQLite stage is detached by `staged`."""
    if db.dialect == "postgresql":
        db.execute(f"DROP TABLE IF EXISTS {table}")
