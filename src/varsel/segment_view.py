"""Show a segment preview in the terminal as Rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

from varsel import municipality
from varsel.i18n import fmt_count, fmt_int, fmt_share
from varsel.segment import Preview, describe_reason, u_label


def _municipality_name(number: str) -> str:
    return f"{number} {municipality.name(number) or ''}".strip()


def render_preview(console: Console, p: Preview) -> None:
    """Print the preview: totals, breakdown by municipality × reachability, domains, notes."""
    source = (
        f"Registerdata: snapshot {p.snapshot.id}"
        if p.snapshot
        # Segments select main units: sub-units alone select nothing, so the units are named.
        else "Ingen enheter (hovedenheter) importert ennå: et utvalg velger blant dem "
        "(varsel registry import ENHETER-DUMP)."
    )
    if p.snapshot:
        dump = p.dump.dump_date if p.dump and p.dump.dump_date else "ukjent dato"
        source += f", dump {dump}"
        if p.feed_updated:
            source += f", oppdatert fra endringsloggen til {p.feed_updated}"
    console.print(Styled(source, style="dim"), soft_wrap=True)
    table = Table(title=f"{fmt_count(p.units, 'enhet', 'enheter')} valgt", title_justify="left")
    table.add_column("Kommune")
    for header in ("Enheter", "E-post", "Bare telefon", "Bare postadresse"):
        table.add_column(header, justify="right")
    for number, counts in p.by_municipality_reach.items():
        table.add_row(
            _municipality_name(number),
            fmt_int(p.by_municipality[number]),
            fmt_int(counts["email"]),
            fmt_int(counts["phone_only"]),
            fmt_int(counts["postal_only"]),
        )
    if p.foreign:
        table.add_row(
            "Adresse i utlandet",
            fmt_int(p.foreign),
            *(fmt_int(p.foreign_reach[k]) for k in ("email", "phone_only", "postal_only")),
        )
    r = p.reachability
    table.add_row(
        Styled("Sum", style="bold"),
        Styled(fmt_int(p.units), style="bold"),
        Styled.assemble((fmt_int(r["email"]), "bold"), f" ({fmt_share(r['email'], p.units)})"),
        f"{fmt_int(r['phone_only'])} ({fmt_share(r['phone_only'], p.units)})",
        f"{fmt_int(r['postal_only'])} ({fmt_share(r['postal_only'], p.units)})",
        end_section=True,
    )
    console.print(table)
    if p.rule == "none":  # any other rule is stated in the notes, with what it leaves out
        console.print("Regel for ansatte: ingen krav til ansatte.")
    if p.undecided:
        fate = "ikke med" if p.rule == "exact" else "tatt med"
        undecided = fmt_count(p.undecided, "enhet", "enheter")
        console.print(f"Uavgjort etter ansatte-regelen: {undecided}, {fate}.")
    for note in p.notes:
        console.print(Styled.assemble(("Merk:", "yellow"), " ", note), soft_wrap=True)
    if p.unusable:
        console.print("Enheter med bare ubrukelig e-postadresse:")
        for reason, count in p.unusable.items():
            console.print(f"  {fmt_int(count):>8}  {describe_reason(reason)}")
    if p.personal_addresses:
        personal = fmt_count(p.personal_addresses, "e-postadresse", "e-postadresser")
        role = fmt_count(p.role_addresses, "er en rolleadresse", "er rolleadresser")
        console.print(
            f"{personal} tilhører enkeltpersonforetak (personopplysninger); {role} som post@."
        )
    if p.top_domains:
        domains = Table("E-postdomene", "Enheter", title="Vanligste domener", title_justify="left")
        for domain, count in p.top_domains:
            domains.add_row(Styled(u_label(domain)), fmt_int(count))
        console.print(domains)
    if p.shared_addresses:
        shared = Table(
            "Adresse", "Enheter", title="Adresser delt av flere enheter", title_justify="left"
        )
        for address, count in p.shared_addresses:
            shared.add_row(Styled(u_label(address)), fmt_int(count))
        console.print(shared)
    if p.shared_personal:
        # A sole proprietor's own address is a person's: counted, never listed.
        n = p.shared_personal
        what = "personlig adresse" if n == 1 else "personlige adresser"
        console.print(f"{fmt_int(n)} {what} er ikke vist.")
