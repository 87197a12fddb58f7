"""Segments: criteria → the businesses they select, and how each of them can be reached.

A segment selects main units (enheter): the legal entities a message is addressed to. A unit
is in the area when its business address is, or when one of its sub-units is located there
(a Bergen company's Oslo branch makes the company part of an Oslo segment, counted once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import idna

from varsel import municipality
from varsel.contacts import Reason, explain
from varsel.db import Database
from varsel.errors import N_, BadCriteriaError, Text
from varsel.i18n import fmt_int
from varsel.segment_criteria import Criteria, Resolved, resolve
from varsel.snapshot import Snapshot, data_age, latest_snapshot

REACH = ("email", "phone_only", "postal_only")
FOREIGN = "utland"  # the breakdown's key for units with a foreign business address


# -- SQL ---------------------------------------------------------------------------------


def _filters(r: Resolved) -> tuple[str, list[Any]]:
    """WHERE conditions on units u (a main unit) for everything but the area."""
    where = ["u.kind = 'enhet'", "u.gone_snapshot_id IS NULL"]
    params: list[Any] = []
    if r.rule == "registered":
        where.append("u.has_employees = ?")
        params.append(True)
    elif r.rule == "registered_undecided":
        # A known count must reach the threshold; a hidden one (1-4) is taken as undecided.
        where.append("u.has_employees = ? AND (u.employees IS NULL OR u.employees >= ?)")
        params += [True, r.min_employees]
    elif r.rule == "hidden":
        where.append("u.has_employees = ? AND u.employees IS NULL")
        params.append(True)
    elif r.rule == "exact":
        where.append("u.employees >= ?")
        params.append(r.min_employees)
    if r.nace:
        match = ["u.nace1 LIKE ?" for _ in r.nace]
        if r.nace_2007:
            match.append(f"u.nace1 IN ({', '.join('?' for _ in r.nace_2007)})")
        where.append("(" + " OR ".join(match) + ")")
        params += [f"{p}%" for p in r.nace]
        params += list(r.nace_2007)
    if r.forms:
        where.append(f"u.form IN ({', '.join('?' for _ in r.forms)})")
        params += r.forms
    if r.exclude_forms:
        where.append(f"u.form NOT IN ({', '.join('?' for _ in r.exclude_forms)})")
        params += r.exclude_forms
    if r.sectors:
        where.append("(" + " OR ".join("u.sector LIKE ?" for _ in r.sectors) + ")")
        params += [f"{s}%" for s in r.sectors]
    return " AND ".join(where), params


def _status_filters(criteria: Criteria) -> list[str]:
    where = []
    if not criteria.include_bankrupt:
        where.append("u.bankrupt = ?")
    if not criteria.include_liquidating:
        where += ["u.liquidating = ?", "u.forced_dissolution = ?"]
    if not criteria.include_deleted:
        where.append("u.deleted_date IS NULL")
    return where


def selection_sql(criteria: Criteria, resolved: Resolved | None = None) -> tuple[str, list[Any]]:
    """SQL yielding (orgnr, municipality, reach, undecided) for every selected unit."""
    r = resolved or resolve(criteria)
    where, params = _filters(r)
    status = _status_filters(criteria)
    status_params: list[Any] = [False] * sum(1 for s in status if "?" in s)
    if criteria.exclude_reached_by:
        reached, reached_params = reached_sql(criteria.exclude_reached_by)
        status.append(f"u.orgnr NOT IN ({reached})")
        status_params += reached_params
    where_all = " AND ".join([where, *status])
    undecided = (
        "CASE WHEN u.employees IS NULL AND u.has_employees = ? THEN 1 ELSE 0 END"
        if r.rule == "registered_undecided"
        else "0"
    )
    undecided_params: list[Any] = [True] if undecided != "0" else []
    if r.area is None:
        sql = (
            f"SELECT u.orgnr AS orgnr, coalesce(u.municipality, '{FOREIGN}') AS municipality, "
            f"u.reach AS reach, {undecided} AS undecided, "
            "CASE WHEN u.email IS NULL THEN 0 ELSE 1 END AS has_email "
            f"FROM units u WHERE {where_all}"
        )
        return sql, undecided_params + params + status_params
    marks = ", ".join("?" for _ in r.area)
    # Units whose own address is in the area, plus (disjoint) units outside it with a sub-unit
    # inside, counted once under the lowest such municipality. Both halves run on covering
    # partial indexes, so neither needs to group the whole area by organisation number.
    own = (
        f"SELECT u.orgnr AS orgnr, u.municipality AS municipality, u.reach AS reach, "
        f"{undecided} AS undecided, CASE WHEN u.email IS NULL THEN 0 ELSE 1 END AS has_email "
        "FROM units u "
        f"WHERE {where_all} AND u.municipality IN ({marks})"
    )
    via = (
        f"SELECT u.orgnr, b.municipality, u.reach, {undecided}, "
        "CASE WHEN u.email IS NULL THEN 0 ELSE 1 END FROM ("
        "SELECT parent_orgnr AS orgnr, min(municipality) AS municipality FROM units "
        "WHERE kind = 'underenhet' AND gone_snapshot_id IS NULL AND deleted_date IS NULL "
        f"AND municipality IN ({marks}) AND parent_orgnr IS NOT NULL GROUP BY parent_orgnr"
        f") b JOIN units u ON u.orgnr = b.orgnr WHERE {where_all} "
        f"AND (u.municipality IS NULL OR u.municipality NOT IN ({marks}))"
    )
    filter_params = [*params, *status_params]
    return (
        f"{own} UNION ALL {via}",
        [
            *undecided_params,
            *filter_params,
            *r.area,
            *undecided_params,
            *r.area,
            *filter_params,
            *r.area,
        ],
    )


def reached_sql(campaign_ids: Iterable[int]) -> tuple[str, list[Any]]:
    """SQL yielding the orgnr of every unit one of the campaigns reached or has on the way."""
    # Coverage's own definition, not a second one; imported here because coverage imports
    # this module.
    from varsel.coverage import reached_or_on_the_way_sql

    parts = [reached_or_on_the_way_sql(c) for c in campaign_ids]
    return " UNION ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]


def check_campaigns(db: Database, criteria: Criteria) -> None:
    """Refuse campaign numbers in exclude_reached_by that no campaign has."""
    for campaign_id in criteria.exclude_reached_by:
        if db.scalar("SELECT count(*) FROM campaigns WHERE id = ?", (campaign_id,)) == 0:
            raise BadCriteriaError(
                Text(
                    "kampanje %(campaign)s finnes ikke (utelat dem kampanje %(campaign)s nådde)",
                    campaign=campaign_id,
                )
            )


def _campaigns_named(ids: tuple[int, ...]) -> Text | str:
    """'1', or '1, 2 eller 3': the campaigns as the note names them."""
    if len(ids) == 1:
        return str(ids[0])
    return Text("%(first)s eller %(last)s", first=", ".join(str(i) for i in ids[:-1]), last=ids[-1])


# Letters made and messages still in the outbox count as reached: a business whose letter is
# in the post, or whose e-mail is queued, would otherwise get the follow-up as well.
_NOTE_LEFT_OUT = N_(
    "Utelatt: %(n)s virksomheter som kampanje %(campaigns)s nådde (e-post levert, brev "
    "postlagt eller på vei, Altinn levert)."
)


# -- preview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """How many businesses a segment selects and how they can be reached."""

    criteria: Criteria
    snapshot: Snapshot | None
    units: int
    undecided: int
    rule: str
    notes: tuple[Text, ...]  # Bokmål, translated where shown
    by_municipality: dict[str, int]  # 2024 municipality numbers only
    by_municipality_reach: dict[str, dict[str, int]]
    foreign: int  # units with a foreign business address (no municipality)
    foreign_reach: dict[str, int]
    reachability: dict[str, int]
    unusable: dict[str, int]  # units with only unusable e-mail, by reason
    top_domains: list[tuple[str, int]]  # A-labels, as the store keeps them
    shared_addresses: list[tuple[str, int]]  # role and business addresses, no person's own
    shared_personal: int  # shared addresses a sole proprietor gave as its own: left out
    personal_addresses: int  # selected sole proprietors with a usable e-mail
    role_addresses: int
    area: tuple[str, ...] | None = field(default=None)
    left_out_reached: int = 0  # units left out: a campaign in exclude_reached_by reached them
    dump: Snapshot | None = None  # the newest dump of enheter: its date is the data's date
    feed: Snapshot | None = None  # the newest change-feed page applied after it
    # The day of the newest change the pages since the dump applied (not the day they were
    # applied: that says nothing about how old the data is), or None.
    feed_updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The preview as one JSON-ready object."""
        return {
            "units": self.units,
            "undecided": self.undecided,
            "employee_rule": self.rule,
            "notes": list(self.notes),
            "snapshot": self.snapshot.id if self.snapshot else None,
            "dump_date": self.dump.dump_date if self.dump else None,
            "feed_updated": self.feed_updated,
            "criteria": self.criteria.as_dict(),
            "area": list(self.area) if self.area is not None else None,
            "by_municipality": self.by_municipality,
            "by_municipality_reach": self.by_municipality_reach,
            "foreign_address": self.foreign,
            "foreign_address_reach": self.foreign_reach,
            "reachability": self.reachability,
            "unusable_email": self.unusable,
            "top_domains": [
                {"domain": d, "domain_unicode": u_label(d), "units": n} for d, n in self.top_domains
            ],
            "shared_addresses": [
                {"address": a, "address_unicode": u_label(a), "units": n}
                for a, n in self.shared_addresses
            ],
            "shared_personal_not_shown": self.shared_personal,
            "personal_addresses": self.personal_addresses,
            "role_addresses": self.role_addresses,
            "left_out_reached": self.left_out_reached,
        }


def preview(db: Database, criteria: Criteria, *, top: int = 10) -> Preview:
    """Count what a segment selects: units, undecided, by municipality and reachability."""
    resolved = resolve(criteria)
    check_campaigns(db, criteria)
    # The selection before leaving out what earlier campaigns reached: the note counts those.
    sql, params = selection_sql(dataclasses.replace(criteria, exclude_reached_by=()), resolved)
    # The selection is computed once into a temporary table; every breakdown reads from it.
    db.execute("DROP TABLE IF EXISTS segment_preview")
    db.execute(f"CREATE TEMP TABLE segment_preview AS {sql}", params)
    left_out = 0
    if criteria.exclude_reached_by:
        reached, reached_params = reached_sql(criteria.exclude_reached_by)
        where = f"WHERE orgnr IN ({reached})"
        left_out = int(db.scalar(f"SELECT count(*) FROM segment_preview {where}", reached_params))
        db.execute(f"DELETE FROM segment_preview {where}", reached_params)
        note = Text(
            _NOTE_LEFT_OUT,
            n=fmt_int(left_out),
            campaigns=_campaigns_named(criteria.exclude_reached_by),
        )
        resolved = dataclasses.replace(resolved, notes=(*resolved.notes, note))
    db.execute("DROP TABLE IF EXISTS segment_contacts")
    db.execute(
        "CREATE TEMP TABLE segment_contacts AS SELECT c.orgnr AS orgnr, c.address AS address, "
        "c.usable AS usable, c.reason AS reason, c.domain AS domain, c.role AS role, "
        "c.personal AS personal, s.reach AS reach FROM segment_preview s "
        "JOIN contacts c ON c.orgnr = s.orgnr WHERE s.has_email = 1"
    )
    try:
        result = _preview_from_table(db, criteria, resolved, top)
        return dataclasses.replace(result, left_out_reached=left_out)
    finally:
        db.execute("DROP TABLE IF EXISTS segment_preview")
        db.execute("DROP TABLE IF EXISTS segment_contacts")


def _preview_from_table(db: Database, criteria: Criteria, resolved: Resolved, top: int) -> Preview:
    rows = db.query(
        "SELECT municipality, reach, count(*), sum(undecided) FROM segment_preview "
        "GROUP BY municipality, reach"
    )
    by_mun: dict[str, int] = {}
    by_mun_reach: dict[str, dict[str, int]] = {}
    reach = dict.fromkeys(REACH, 0)
    total = undecided = 0
    foreign = dict.fromkeys(REACH, 0)
    for mun, how, n, und in rows:
        count = int(n)
        if not mun or mun == FOREIGN:
            foreign[how] += count
        else:
            by_mun[mun] = by_mun.get(mun, 0) + count
            by_mun_reach.setdefault(mun, dict.fromkeys(REACH, 0))[how] += count
        reach[how] += count
        total += count
        undecided += int(und or 0)
    if resolved.rule == "exact" and resolved.min_employees < 5:
        # Left out, but only because their hidden count (1-4) cannot be compared.
        hidden_sql, hidden_params = selection_sql(
            criteria, dataclasses.replace(resolved, rule="hidden")
        )
        undecided = int(db.scalar(f"SELECT count(*) FROM ({hidden_sql}) h", hidden_params))
    joined = "FROM segment_contacts c"
    top_domains = [
        (str(d), int(n))
        for d, n in db.query(
            f"SELECT c.domain, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
            "GROUP BY c.domain ORDER BY 2 DESC, 1 LIMIT ?",
            (True, top),
        )
    ]
    # The table is for accountants' and shared role addresses. A person's own address, one a
    # sole proprietor gave (marte.eriksen@gmail.com, for her ENK and her NUF), is counted, not
    # shown; an accountant's post@ stays even when its clients here are sole proprietors.
    shared_sql = (
        f"SELECT c.address, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
        "GROUP BY c.address HAVING count(DISTINCT c.orgnr) > 1 "
        "AND max(CASE WHEN c.personal = ? AND c.role = ? THEN 1 ELSE 0 END) = ?"
    )
    flags = (True, True, False)
    shared = [
        (str(a), int(n))
        for a, n in db.query(f"{shared_sql} ORDER BY 2 DESC, 1 LIMIT ?", (*flags, 0, top))
    ]
    shared_personal = int(db.scalar(f"SELECT count(*) FROM ({shared_sql}) p", (*flags, 1)))
    unusable_rows = db.query(
        f"SELECT c.reason, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
        "AND c.reach <> 'email' GROUP BY c.reason ORDER BY 2 DESC, 1",
        (False,),
    )
    kinds = db.query_one(
        "SELECT sum(CASE WHEN c.personal = ? THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN c.role = ? THEN 1 ELSE 0 END) {joined} WHERE c.usable = ?",
        (True, True, True),
    ) or (0, 0)
    dump = latest_snapshot(db, "enheter", "dump")
    feed = latest_snapshot(db, "enheter", "feed")
    age = data_age(db, "enheter")
    return Preview(
        dump=dump,
        feed=feed if feed and (dump is None or feed.id > dump.id) else None,
        feed_updated=age.as_of if age is not None and age.from_feed else None,
        criteria=criteria,
        snapshot=latest_snapshot(db, "enheter"),
        units=total,
        undecided=undecided,
        rule=resolved.rule,
        notes=resolved.notes,
        by_municipality=dict(sorted(by_mun.items())),
        by_municipality_reach=dict(sorted(by_mun_reach.items())),
        foreign=sum(foreign.values()),
        foreign_reach=foreign,
        reachability=reach,
        unusable={str(reason): int(n) for reason, n in unusable_rows},
        top_domains=top_domains,
        shared_addresses=shared,
        shared_personal=shared_personal,
        personal_addresses=int(kinds[0] or 0),
        role_addresses=int(kinds[1] or 0),
        area=resolved.area,
    )


def u_label(text: str) -> str:
    """A domain, or an address's, as people write it: xn--oslofrisr-s8a.no → oslofrisør.no."""
    local, at, domain = text.rpartition("@")
    if "xn--" not in domain:
        return text
    try:
        return f"{local}{at}{idna.decode(domain)}"
    except UnicodeError:  # idna.IDNAError and its kin: not a valid A-label, shown as stored
        return text


def describe_reason(reason: str) -> str:
    """Norwegian text for an unusable-address reason code."""
    try:
        return explain(Reason(reason))
    except ValueError:
        return reason


def summary_line(p: Preview) -> str:
    """One line for logs and the demo, naming the area (every area given, added up)."""
    r = p.reachability
    c = p.criteria
    places = municipality.describe(c.municipalities, c.counties, c.police_districts)
    where = f" i {' + '.join(places)}" if places else " i hele landet"
    return (
        f"{fmt_int(p.units)} enheter valgt{where}: {fmt_int(r['email'])} med brukbar e-post, "
        f"{fmt_int(r['phone_only'])} bare telefon, {fmt_int(r['postal_only'])} bare postadresse."
    )
