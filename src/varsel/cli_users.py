"""`varsel user ...`: operator accounts from the command line, and the credentials prompt.

The command line runs with the store's own credentials, so these commands are for whoever
administers the installation; each change is recorded in the audit log with the
operating-system login as its actor (`cli:<login>`).
"""

from __future__ import annotations

import json
import os

import click

from varsel.accounts import ROLE_LABELS, Enrolment, Role, User
from varsel.cli import State, out, pass_state
from varsel.cli_output import NorskGroup, require_terminal
from varsel.errors import UserError


class RoleType(click.ParamType[Role, object]):
    """A role by its Bokmål name (leser, forfatter, ...) or its code (viewer, author, ...)."""

    name = "rolle"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Role:
        if isinstance(value, Role):
            return value
        text = str(value).strip().lower()
        for role, label in ROLE_LABELS.items():
            if text in (role.value, label):
                return role
        names = list(ROLE_LABELS.values())
        return self.fail(
            f"«{value}» er ikke en rolle (velg {', '.join(names[:-1])} eller {names[-1]})"
        )


ROLE = RoleType()
ROLE_HELP = (
    "leser, forfatter, godkjenner eller administrator (eller viewer, author, approver, admin)."
)


def read_password(*, new: bool = False) -> str:
    """VARSEL_PASSWORD for scripts, else asked for without echo (twice when it is new)."""
    given = os.environ.get("VARSEL_PASSWORD")
    if given:
        return given
    require_terminal("passord")  # else Python warns and reads the password with echo
    return str(
        click.prompt(
            "Nytt passord" if new else "Passord",
            hide_input=True,
            confirmation_prompt="Gjenta passordet" if new else False,
            err=True,
        )
    )


def read_code() -> str:
    """VARSEL_TOTP for scripts, else asked for."""
    given = os.environ.get("VARSEL_TOTP")
    if given:
        return given
    require_terminal("engangskode")
    return str(click.prompt("Engangskode fra appen", err=True))


def signed_in(state: State, name: str | None, role: Role) -> User:
    """The operator named by --user or VARSEL_USER, after password and TOTP code, with `role`."""
    from varsel.accounts import require_role
    from varsel.signin import verify_credentials

    who = name or state.settings.user
    if not who:
        raise UserError("oppgi hvem du er: --user NAVN (eller VARSEL_USER)")
    user = verify_credentials(
        state.db, state.settings, who, read_password(), read_code(), via="cli"
    )
    require_role(user, role)
    return user


def _actor() -> str:
    from varsel.audit import cli_actor

    return cli_actor()


def _show_enrolment(enrolment: Enrolment) -> None:
    name = enrolment.user.name
    out.print(
        f"Skann QR-koden med en autentiseringsapp (for eksempel Microsoft eller Google "
        f"Authenticator), eller skriv inn nøkkelen {enrolment.secret}.",
        soft_wrap=True,
    )
    click.echo(enrolment.qr_text(), nl=False)
    out.print(enrolment.uri, soft_wrap=True)
    out.print(
        f"Kontoen kan brukes når koden er bekreftet: varsel user confirm-totp {name}",
        soft_wrap=True,
    )


@click.group(cls=NorskGroup)
def user() -> None:
    """Operatørkontoer: roller, passord, engangskoder (TOTP) og økter."""


@user.command("add")
@click.argument("name", metavar="NAVN")
@click.option("--role", type=ROLE, required=True, help=ROLE_HELP)
@click.option("--email", metavar="ADRESSE", help="Operatørens egen adresse (for testutsendinger).")
@pass_state
def user_add(state: State, name: str, role: Role, email: str | None) -> None:
    """Lag en konto; spør om passordet (eller VARSEL_PASSWORD) og viser QR-koden for TOTP."""
    from varsel.accounts import add_user

    password = read_password(new=True)  # first: no terminal to ask on, and no store is made
    enrolment = add_user(
        state.db_or_new,
        state.settings,
        name,
        role,
        password,
        actor=_actor(),
        email=email,
    )
    label = ROLE_LABELS[role]
    out.print(f"Brukeren «{enrolment.user.name}» er laget med rollen «{label}».", soft_wrap=True)
    _show_enrolment(enrolment)


@user.command("confirm-totp")
@click.argument("name", metavar="NAVN")
@pass_state
def user_confirm_totp(state: State, name: str) -> None:
    """Fullfør registreringen med passordet og en kode fra appen (eller VARSEL_TOTP)."""
    from varsel.signin import confirm_totp

    confirmed = confirm_totp(state.db, state.settings, name, read_password(), read_code())
    out.print(f"TOTP er bekreftet; kontoen «{confirmed.name}» kan nå brukes.")


def _status(u: User) -> str:
    if u.disabled:
        return "deaktivert"
    if not u.enrolled:
        return "venter på TOTP"
    if u.locked_until:
        from varsel.clock import utcnow_iso

        if u.locked_until > utcnow_iso():
            from zoneinfo import ZoneInfo

            from varsel.accounts import parse_time

            # Oslo's clock, as the sign-in refusal says it («prøv igjen kl. 11.20»).
            until = parse_time(u.locked_until).astimezone(ZoneInfo("Europe/Oslo"))
            return f"låst til {until:%Y-%m-%d} kl. {until:%H.%M}"
    return "aktiv"


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON.")
@pass_state
def user_list(state: State, as_json: bool) -> None:
    """Vis kontoene med rolle, og om de kan logge inn."""
    from varsel.accounts import list_users

    users = list_users(state.db)
    if as_json:
        click.echo(json.dumps([u.as_dict() for u in users], ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table("Bruker", "Rolle", "E-post", "Status", "Laget")
    for u in users:
        table.add_row(u.name, ROLE_LABELS[u.role], u.email or "", _status(u), u.created_at[:10])
    out.print(table)


@user.command("set-role")
@click.argument("name", metavar="NAVN")
@click.argument("role", type=ROLE, metavar="ROLLE")
@pass_state
def user_set_role(state: State, name: str, role: Role) -> None:
    """Gi en konto en annen rolle: leser, forfatter, godkjenner eller administrator."""
    from varsel.accounts import set_role

    changed = set_role(state.db, name, role, actor=_actor())
    out.print(f"«{changed.name}» har nå rollen «{ROLE_LABELS[changed.role]}».", soft_wrap=True)
    if not changed.role.allows(Role.APPROVER):
        _say_lapsed(state, changed.name)


@user.command("set-password")
@click.argument("name", metavar="NAVN")
@pass_state
def user_set_password(state: State, name: str) -> None:
    """Sett nytt passord (spørres to ganger, eller VARSEL_PASSWORD); kontoens økter avsluttes."""
    from varsel.accounts import set_password

    changed = set_password(state.db, state.settings, name, read_password(new=True), actor=_actor())
    out.print(f"Passordet til «{changed.name}» er byttet; alle øktene er avsluttet.")


@user.command("disable")
@click.argument("name", metavar="NAVN")
@pass_state
def user_disable(state: State, name: str) -> None:
    """Deaktiver en konto: ingen innlogging, og øktene avsluttes nå."""
    from varsel.accounts import disable_user

    changed = disable_user(state.db, name, actor=_actor())
    out.print(f"«{changed.name}» er deaktivert; alle øktene er avsluttet.", soft_wrap=True)
    _say_lapsed(state, changed.name)


def _say_lapsed(state: State, name: str) -> None:
    """Which campaigns the account's approvals no longer hold for, and which of them send now."""
    from varsel.accounts import lapsed_approvals

    lapsed = lapsed_approvals(state.db, name)
    if not lapsed:
        return
    ids = [str(a.campaign_id) for a in lapsed]
    if len(ids) == 1:
        said = f"Godkjenningen fra «{name}» av kampanje {ids[0]} gjelder ikke lenger: den"
    else:
        which = f"{', '.join(ids[:-1])} og {ids[-1]}"
        said = f"Godkjenningene fra «{name}» av kampanje {which} gjelder ikke lenger: de"
    pronoun = said.rsplit(" ", 1)[1]
    out.print(f"{said} må godkjennes på nytt før {pronoun} sendes (videre).", soft_wrap=True)
    for a in lapsed:
        if a.sending:
            # A send under way was let through the gate before: it goes on until paused.
            i = a.campaign_id
            out.print(
                f"Kampanje {i} sendes nå og fortsetter; stopp den med «varsel campaign pause {i}».",
                soft_wrap=True,
            )


@user.command("enable")
@click.argument("name", metavar="NAVN")
@pass_state
def user_enable(state: State, name: str) -> None:
    """La en deaktivert konto logge inn igjen."""
    from varsel.accounts import enable_user

    changed = enable_user(state.db, name, actor=_actor())
    out.print(f"«{changed.name}» kan logge inn igjen.")


@user.command("unlock")
@click.argument("name", metavar="NAVN")
@pass_state
def user_unlock(state: State, name: str) -> None:
    """Lås opp en konto som er låst etter for mange mislykkede innlogginger."""
    from varsel.accounts import unlock_user

    changed = unlock_user(state.db, name, actor=_actor())
    out.print(f"«{changed.name}» er låst opp.")


@user.command("reset-totp")
@click.argument("name", metavar="NAVN")
@pass_state
def user_reset_totp(state: State, name: str) -> None:
    """Ny TOTP-nøkkel og nytt passord (mistet telefon); spør om passordet (eller
    VARSEL_PASSWORD). Øktene avsluttes til den nye koden er bekreftet."""
    from varsel.accounts import get_user, reset_totp

    get_user(state.db, name)  # an unknown name is told before the password is asked for
    # A new password too: with the old one, whoever stole it could enrol a phone first.
    password = read_password(new=True)
    enrolment = reset_totp(state.db, state.settings, name, password, actor=_actor())
    out.print(
        f"«{enrolment.user.name}» har fått ny TOTP-nøkkel og nytt passord; alle øktene er "
        "avsluttet. Gi passordet til eieren på en trygg måte.",
        soft_wrap=True,
    )
    _show_enrolment(enrolment)


@user.command("sign-out-everywhere")
@click.argument("name", metavar="NAVN")
@pass_state
def user_sign_out_everywhere(state: State, name: str) -> None:
    """Avslutt alle øktene til en konto (en mistet eller delt datamaskin)."""
    from varsel.signin import sign_out_everywhere

    ended = sign_out_everywhere(state.db, name, actor=_actor())
    what = "økt" if ended == 1 else "økter"
    out.print(f"{ended} {what} for «{name.strip().lower()}» er avsluttet.", soft_wrap=True)
