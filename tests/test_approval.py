"""Four-eyes approval: who may approve, what it binds, what voids it, and the send gate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from helpers import PASSWORD, campaign_toml, next_code, operator
from varsel import audit
from varsel.accounts import Forbidden, User, get_user
from varsel.approval import (
    PARTS,
    UNBOUND,
    ApprovalError,
    NotApproved,
    StaleDigest,
    approval_state,
    approve,
    fingerprint,
    require_approved,
)
from varsel.campaign import (
    CampaignSpec,
    CampaignStatus,
    create_campaign,
    get_campaign,
    set_status,
    update_spec,
)
from varsel.campaign_spec import (
    Template,
)
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump
from varsel.send_gate import authorise_send
from varsel.testing import SmtpSink

CAMPAIGN = campaign_toml(sender='reply_to = "post@nsr-org.no"\n', document='file = "rad.pdf"\n')
NOT_APPROVED = (
    "kampanje 1 er ikke godkjent: en godkjenner som ikke skrev den må godkjenne den først "
    "(varsel campaign approve 1 --user NAVN)"
)


def voided(what: str) -> str:
    return (
        f"godkjenningen av kampanje 1 gjelder ikke lenger: {what} er endret etter at berit "
        "godkjente den; den må godkjennes på nytt"
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Real argon2id with less memory than in production, so that making accounts is quick.
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"), password_memory_kib=8192)


@pytest.fixture
def definition(tmp_path: Path) -> Path:
    (tmp_path / "rad.pdf").write_bytes(b"%PDF-1.7 sikkerhetsrad")
    path = tmp_path / "kampanje.toml"
    path.write_text(CAMPAIGN, "utf-8")
    return path


@pytest.fixture
def registry_db(db: Database, brreg: Path) -> Database:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "underenheter-sample.json")
    return db


@pytest.fixture
def people(registry_db: Database, settings: Settings) -> dict[str, User]:
    """kari writes (author), berit approves."""
    operator(registry_db, settings, "kari", "author")
    operator(registry_db, settings, "berit", "approver")
    return {n: get_user(registry_db, n) for n in ("kari", "berit")}


def another(db: Database, settings: Settings, name: str, role: str) -> User:
    operator(db, settings, name, role)
    return get_user(db, name)


@pytest.fixture
def cid(registry_db: Database, settings: Settings, definition: Path, people: Any) -> int:
    return create_campaign(registry_db, settings, definition, created_by="kari").campaign.id


def edited(db: Database, campaign_id: int, **changes: Any) -> CampaignSpec:
    spec = get_campaign(db, campaign_id).spec
    return dataclasses.replace(spec, **changes)


def test_the_author_cannot_approve_their_own_campaign(
    registry_db: Database, settings: Settings, definition: Path, people: dict[str, User]
) -> None:
    campaign_id = create_campaign(registry_db, settings, definition, created_by="berit").campaign.id
    with pytest.raises(ApprovalError) as e:
        approve(registry_db, settings, campaign_id, people["berit"])
    assert e.value.message == (
        "berit skrev kampanje 1 og kan ikke godkjenne den selv; en annen godkjenner må gjøre det"
    )
    with pytest.raises(NotApproved, match="er ikke godkjent"):
        require_approved(registry_db, campaign_id)


def test_an_approver_who_edited_the_campaign_cannot_approve_it(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # Kari wrote it; Berit (an approver, who may also edit) changes the subject, then tries to
    # approve what she has written part of: one person would have written and approved it.
    spec = get_campaign(registry_db, cid).spec
    nb = spec.templates["nb"]
    templates = {**spec.templates, "nb": Template(nb.subject + " (endret)", nb.text, nb.html)}
    update_spec(registry_db, cid, edited(registry_db, cid, templates=templates), actor="berit")
    with pytest.raises(ApprovalError) as e:
        approve(registry_db, settings, cid, people["berit"])
    assert e.value.message == (
        "berit har endret kampanje 1 og kan ikke godkjenne den selv; en annen godkjenner, som "
        "ikke har skrevet eller endret den, må gjøre det"
    )
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0
    # Another approver, who neither wrote nor changed it, may.
    per = another(registry_db, settings, "per", "approver")
    assert approve(registry_db, settings, cid, per).approved_by == "per"


def test_authors_and_viewers_cannot_approve(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    with pytest.raises(Forbidden) as e:
        approve(registry_db, settings, cid, people["kari"])
    assert e.value.message == "kari har rollen «forfatter»; dette krever «godkjenner» eller høyere"
    vera = another(registry_db, settings, "vera", "viewer")
    with pytest.raises(Forbidden, match="vera har rollen «leser»"):
        approve(registry_db, settings, cid, vera)
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0


def test_approval_by_another_approver_lets_it_be_sent(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approval = approve(registry_db, settings, cid, people["berit"])
    assert require_approved(registry_db, cid) == approval
    assert authorise_send(registry_db, settings, cid, actor="kari") == approval
    (approved,) = audit.entries(registry_db, action=audit.Action.CAMPAIGN_APPROVE)
    assert (approved.actor, approved.object) == ("berit", "campaign:1")
    assert approved.data == {"approval": approval.id, "author": "kari", "digest": approval.digest}
    (send,) = audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND)
    assert send.actor == "kari"
    assert send.data == {
        "approval": approval.id,
        "approved_by": "berit",
        "channel": "email",
        "digest": approval.digest,
        "no_approval": False,
    }


def test_approving_twice_is_refused(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    with pytest.raises(ApprovalError, match=r"^kampanje 1 er allerede godkjent av berit \("):
        approve(registry_db, settings, cid, another(registry_db, settings, "per", "approver"))


def test_a_template_edit_voids_the_approval(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    spec = get_campaign(registry_db, cid).spec
    nn = spec.templates["nn"]
    templates = {**spec.templates, "nn": Template(nn.subject + " (ny)", nn.text, nn.html)}
    update_spec(registry_db, cid, edited(registry_db, cid, templates=templates), actor="kari")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == voided("malene")
    assert approval_state(registry_db, cid).changed == ("templates",)


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"from_name": "Noen andre"}, "avsenderen"),
        ({"reply_to": "svar@nsr-org.no"}, "avsenderen"),
        ({"document_url": "https://www.politiet.no/annet.pdf"}, "dokumentet"),
        ({"allow_links": True}, "lenkereglene"),
        ({"allowed_link_domains": ("politiet.no", "example.no")}, "lenkereglene"),
        ({"fields": {"kontakt": "22 00 00 00"}}, "andre felt i definisjonen"),
        ({"name": "Et annet navn"}, "andre felt i definisjonen"),
    ],
)
def test_any_change_to_what_recipients_get_voids_it(
    registry_db: Database,
    settings: Settings,
    cid: int,
    people: dict[str, User],
    changes: dict[str, Any],
    what: str,
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    update_spec(registry_db, cid, edited(registry_db, cid, **changes), actor="kari")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == voided(what)


def test_slower_limits_keep_the_approval(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approval = approve(registry_db, settings, cid, people["berit"])
    limits = dataclasses.replace(get_campaign(registry_db, cid).spec.limits, rate_per_second=5.0)
    update_spec(registry_db, cid, edited(registry_db, cid, limits=limits), actor="kari")
    assert require_approved(registry_db, cid) == approval


def test_a_changed_document_file_voids_it(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User], tmp_path: Path
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    (tmp_path / "rad.pdf").write_bytes(b"%PDF-1.7 noe annet")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == voided("dokumentet")


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        (
            "UPDATE deliveries SET address = 'angriper@example.no' WHERE id = "
            "(SELECT min(id) FROM deliveries)",
            "leveranselisten",
        ),
        (
            "UPDATE deliveries SET code = 'AAAAAAAAAAAA' WHERE id = "
            "(SELECT min(id) FROM deliveries)",
            "leveranselisten",
        ),
        (
            "DELETE FROM delivery_units WHERE delivery_id = (SELECT min(id) FROM deliveries)",
            "leveranselisten",
        ),
        (
            "DELETE FROM recipients WHERE orgnr = (SELECT min(orgnr) FROM recipients)",
            "mottakerlisten",
        ),
        ("UPDATE campaigns SET snapshot_id = 2", "utvalget"),
        ("UPDATE campaigns SET criteria = '{}'", "utvalget"),
        (
            "UPDATE campaigns SET spec = replace(spec, 'politiet.no/rad.pdf', 'politiet.no/r.pdf')",
            "dokumentet",
        ),
    ],
)
def test_changes_made_behind_its_back_void_it(
    registry_db: Database,
    settings: Settings,
    cid: int,
    people: dict[str, User],
    sql: str,
    what: str,
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    registry_db.execute(sql)
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == voided(what)


def test_sending_progress_does_not_void_it(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approval = approve(registry_db, settings, cid, people["berit"])
    registry_db.execute(
        "UPDATE deliveries SET state = 'sent', attempts = 1, sent_at = '2025-03-03T12:00:00Z'"
    )
    set_status(registry_db, cid, CampaignStatus.PAUSED)
    assert require_approved(registry_db, cid) == approval


def test_letters_made_later_do_not_void_it(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # What the letters use case adds for a recipient e-mail did not reach.
    approval = approve(registry_db, settings, cid, people["berit"])
    orgnr = registry_db.scalar("SELECT min(orgnr) FROM recipients")
    registry_db.execute(
        "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, code, "
        "unsubscribe_token, created_at, updated_at) VALUES (?, 'letter', ?, ?, 'nb', 'produced', "
        "'BBBBBBBBBBBB', 'x', '2025-03-03T12:00:00Z', '2025-03-03T12:00:00Z')",
        (cid, orgnr, orgnr),
    )
    assert require_approved(registry_db, cid) == approval


def paused_by_the_workers(db: Database, settings: Settings, cid: int, berit: User) -> None:
    """The campaign approved, handed to the workers through the gate, and paused."""
    from varsel.leases import start_campaign

    approve(db, settings, cid, berit)
    authorise_send(db, settings, cid, actor="kari")
    assert start_campaign(db, cid) is True
    set_status(db, cid, CampaignStatus.PAUSED, actor="kari")


def test_a_resumed_workers_campaign_cannot_be_edited_under_them(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # Resumed (ready, the workers'), it is theirs to send at once: an edit is refused there,
    # as once they have made it «sending».
    from varsel.campaign import CampaignError

    if registry_db.dialect != "postgresql":
        pytest.skip("the workers need PostgreSQL")
    paused_by_the_workers(registry_db, settings, cid, people["berit"])
    set_status(registry_db, cid, CampaignStatus.READY, actor="kari")
    with pytest.raises(CampaignError) as e:
        update_spec(registry_db, cid, edited(registry_db, cid, from_name="Betal nå"), actor="kari")
    assert e.value.message == (
        "kampanje 1 er gitt til arbeiderne, som sender den nå; sett den på pause før du endrer den"
    )
    assert require_approved(registry_db, cid).approved_by == "berit"
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_EDIT) == []


def lapsed(why: str) -> str:
    return f"godkjenningen av kampanje 1 gjelder ikke lenger: {why}; den må godkjennes på nytt"


def test_an_approval_stops_holding_when_its_approver_is_disabled(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # berit's account was stolen: what it approved must not go out on its word.
    from varsel.accounts import disable_user, enable_user

    approve(registry_db, settings, cid, people["berit"])
    disable_user(registry_db, "berit", actor="anne")
    with pytest.raises(NotApproved) as e:
        authorise_send(registry_db, settings, cid, actor="kari")
    assert e.value.message == lapsed("godkjenneren berit er deaktivert")
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND) == []
    state = approval_state(registry_db, cid)
    assert (state.approved, state.changed) == (False, ())
    # The audit log says which campaigns need a new approval.
    (disabled,) = audit.entries(registry_db, action=audit.Action.USER_DISABLE)
    assert disabled.data == {"approvals": [cid], "sessions": 0}
    # Enabled again (a new password), the old approval stays void: it may be the thief's.
    enable_user(registry_db, "berit", actor="anne")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == lapsed("godkjenneren berit har vært deaktivert etter godkjenningen")
    # A new approval (berit's own, now that she has her account back) holds.
    again = approve(registry_db, settings, cid, get_user(registry_db, "berit"))
    assert require_approved(registry_db, cid) == again
    assert authorise_send(registry_db, settings, cid, actor="kari") == again


def test_an_approval_stops_holding_when_its_approver_may_no_longer_approve(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    from varsel.accounts import Role, set_role

    another(registry_db, settings, "anne", "admin")
    approve(registry_db, settings, cid, people["berit"])
    set_role(registry_db, "berit", Role.ADMIN, actor="anne")  # may still approve
    assert require_approved(registry_db, cid).approved_by == "berit"
    set_role(registry_db, "berit", Role.AUTHOR, actor="anne")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == lapsed(
        "godkjenneren berit har ikke lenger en rolle som kan godkjenne"
    )
    roles = [e.data for e in audit.entries(registry_db, action=audit.Action.USER_ROLE)]
    assert roles == [
        {"from": "approver", "to": "admin"},
        {"approvals": [cid], "from": "admin", "to": "author"},
    ]
    set_role(registry_db, "berit", Role.APPROVER, actor="anne")
    with pytest.raises(NotApproved) as e:
        require_approved(registry_db, cid)
    assert e.value.message == lapsed(
        "godkjenneren berit har mistet godkjennerrollen etter godkjenningen"
    )


def test_a_disabled_approver_leaves_others_approvals_and_finished_campaigns_alone(
    registry_db: Database, settings: Settings, definition: Path, cid: int, people: dict[str, User]
) -> None:
    from varsel.accounts import disable_user, lapsing_approvals

    per = another(registry_db, settings, "per", "approver")
    approve(registry_db, settings, cid, people["berit"])
    other = create_campaign(registry_db, settings, definition, created_by="kari").campaign.id
    by_per = approve(registry_db, settings, other, per)
    done = create_campaign(registry_db, settings, definition, created_by="kari").campaign.id
    approve(registry_db, settings, done, people["berit"])
    registry_db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (done,))
    assert lapsing_approvals(registry_db, "berit") == [cid]
    disable_user(registry_db, "berit", actor="anne")
    assert require_approved(registry_db, other) == by_per


def test_a_voided_campaign_can_be_approved_again(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    update_spec(registry_db, cid, edited(registry_db, cid, from_name="NSR Oslo"), actor="kari")
    again = approve(registry_db, settings, cid, another(registry_db, settings, "per", "approver"))
    assert require_approved(registry_db, cid) == again
    assert again.approved_by == "per"


def test_approving_the_digest_shown_binds_it(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    shown = fingerprint(registry_db, cid).digest
    approval = approve(registry_db, settings, cid, people["berit"], expected_digest=shown.upper())
    assert approval.digest == shown
    assert require_approved(registry_db, cid) == approval


def test_a_stale_digest_is_refused_and_nothing_is_stored(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    shown = fingerprint(registry_db, cid).digest
    update_spec(registry_db, cid, edited(registry_db, cid, from_name="Noen andre"), actor="kari")
    now = fingerprint(registry_db, cid).digest
    with pytest.raises(StaleDigest) as e:
        approve(registry_db, settings, cid, people["berit"], expected_digest=shown)
    assert e.value.message == (
        f"kampanje 1 er endret siden fingeravtrykket ble vist: det er nå {now[:16]}…, ikke "
        f"{shown[:16]}…; se over kampanjen på nytt før du godkjenner den"
    )
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0
    # Refused before lint: nothing the approver did not see is linted in their name either.
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_LINT) == []


def test_an_edit_landing_while_lint_runs_is_caught_where_the_approval_is_stored(
    registry_db: Database,
    settings: Settings,
    cid: int,
    people: dict[str, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real lint, then another operator's edit, between the first look and the transaction.
    import varsel.lint

    real_lint = varsel.lint.lint_campaign

    def lint_then_edit(*args: Any, **kwargs: Any) -> Any:
        report = real_lint(*args, **kwargs)
        update_spec(
            registry_db, cid, edited(registry_db, cid, reply_to="x@nsr-org.no"), actor="kari"
        )
        return report

    monkeypatch.setattr(varsel.lint, "lint_campaign", lint_then_edit)
    shown = fingerprint(registry_db, cid).digest
    with pytest.raises(StaleDigest, match=f"^kampanje 1 er endret siden fingeravtrykket ble vist: "
                       f"det er nå [0-9a-f]{{16}}…, ikke {shown[:16]}…"):  # fmt: skip
        approve(registry_db, settings, cid, people["berit"], expected_digest=shown)
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_APPROVE) == []
    assert [e.action for e in audit.entries(registry_db)][-2:] == ["campaign_lint", "campaign_edit"]


def test_a_digest_that_is_not_one_is_refused(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    with pytest.raises(ApprovalError) as e:
        approve(registry_db, settings, cid, people["berit"], expected_digest="  abc123 ")
    assert e.value.message == (
        "fingeravtrykket «abc123» er ikke gyldig: det har 64 tegn 0–9 og a–f "
        "(varsel campaign approve 1 --show viser det)"
    )
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0


def test_every_field_of_the_definition_is_bound_but_the_limits() -> None:
    fields = {f.name for f in dataclasses.fields(CampaignSpec)}
    assert UNBOUND == ("limits",)
    assert "limits" in fields
    assert list(PARTS) == [
        "templates",
        "sender",
        "document",
        "links",
        "selection",
        "other",
        "recipients",
        "deliveries",
    ]


def test_the_fingerprint_is_stable(registry_db: Database, cid: int) -> None:
    first = fingerprint(registry_db, cid)
    assert fingerprint(registry_db, cid) == first
    assert len(first.digest) == 64
    assert set(first.parts) == set(PARTS)


def test_a_campaign_without_an_author_cannot_be_approved(
    registry_db: Database, settings: Settings, definition: Path, people: dict[str, User]
) -> None:
    campaign_id = create_campaign(registry_db, settings, definition).campaign.id
    with pytest.raises(ApprovalError) as e:
        approve(registry_db, settings, campaign_id, people["berit"])
    assert e.value.message == (
        "kampanje 1 har ingen registrert forfatter og kan ikke godkjennes; opprett den på nytt "
        "med «varsel campaign create FIL --user NAVN»"
    )


def test_lint_errors_block_approval(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    spec = get_campaign(registry_db, cid).spec
    bad = {
        k: Template(t.subject, t.text + "\nhttps://bit.ly/x\n", t.html)
        for k, t in spec.templates.items()
    }
    update_spec(registry_db, cid, edited(registry_db, cid, templates=bad), actor="kari")
    with pytest.raises(ApprovalError) as e:
        approve(registry_db, settings, cid, people["berit"])
    assert e.value.message.startswith("kampanje 1 har ")
    assert e.value.message.endswith(
        " feil i lint og kan ikke godkjennes; se «varsel campaign lint 1»"
    )


# -- the command line ----------------------------------------------------------------------


def env(settings: Settings, secret: str | None = None, **more: str) -> dict[str, str]:
    values = {
        "VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir),
        "VARSEL_PASSWORD_MEMORY_KIB": str(settings.password_memory_kib),
        **more,
    }
    if secret is not None:
        values |= {"VARSEL_PASSWORD": PASSWORD, "VARSEL_TOTP": next_code(secret)}
    return values


def test_cli_create_needs_an_author(
    registry_db: Database, settings: Settings, definition: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "create", str(definition)],
        env=env(settings, VARSEL_USER=""),
    )
    assert result.exit_code == 2
    assert result.output == "varsel: oppgi hvem du er: --user NAVN (eller VARSEL_USER)\n"
    assert registry_db.scalar("SELECT count(*) FROM campaigns") == 0


def test_cli_create_refuses_a_wrong_code(
    registry_db: Database, settings: Settings, definition: Path
) -> None:
    operator(registry_db, settings, "kari", "author")
    result = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "create", str(definition), "--user", "kari"],
        env=env(settings, VARSEL_PASSWORD=PASSWORD, VARSEL_TOTP="000000"),
    )
    assert result.exit_code == 2
    assert result.output == "varsel: feil brukernavn, passord eller engangskode\n"
    assert registry_db.scalar("SELECT count(*) FROM campaigns") == 0


def test_cli_viewer_cannot_create(
    registry_db: Database, settings: Settings, definition: Path
) -> None:
    secret = operator(registry_db, settings, "vera", "viewer")
    result = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "create", str(definition), "--user", "vera"],
        env=env(settings, secret),
    )
    assert result.exit_code == 2
    assert result.output == (
        "varsel: vera har rollen «leser»; dette krever «forfatter» eller høyere\n"
    )


def test_cli_create_records_the_signed_in_author(
    registry_db: Database, settings: Settings, definition: Path
) -> None:
    kari = operator(registry_db, settings, "kari", "author")
    created = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "create", str(definition)],
        env=env(settings, kari, VARSEL_USER="kari"),
    )
    assert created.exit_code == 0, created.output
    assert created.output.split()[-1] == "1"
    assert get_campaign(registry_db, 1).created_by == "kari"
    create = audit.entries(registry_db, action=audit.Action.CAMPAIGN_CREATE)[0]
    assert create.actor == "kari"
    sign_in = audit.entries(registry_db, action=audit.Action.SIGN_IN)[0]
    assert (sign_in.actor, sign_in.data) == ("kari", {"session": None, "via": "cli"})


def test_cli_the_author_cannot_approve(
    registry_db: Database, settings: Settings, definition: Path
) -> None:
    kari = operator(registry_db, settings, "kari", "approver")
    create_campaign(registry_db, settings, definition, created_by="kari")
    own = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "approve", "1", "--user", "kari"],
        env=env(settings, kari),
    )
    assert own.exit_code == 2
    assert own.output == (
        "varsel: kari skrev kampanje 1 og kan ikke godkjenne den selv; en annen godkjenner "
        "må gjøre det\n"
    )
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0


def test_cli_approve_then_send(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    berit = registry_db.scalar("SELECT totp_secret FROM users WHERE name = 'berit'")
    runner = CliRunner()
    db = ["--db", registry_db.url]
    with SmtpSink() as sink:
        send = [*db, "campaign", "send", str(cid), "--smtp", sink.url]
        refused = runner.invoke(cli, send, env=env(settings))
        assert refused.exit_code == 2
        assert refused.output == f"varsel: {NOT_APPROVED}\n"
        assert sink.messages == []

        approved = runner.invoke(
            cli, [*db, "campaign", "approve", str(cid), "--user", "berit"], env=env(settings, berit)
        )
        assert approved.exit_code == 0, approved.output
        assert approved.output.startswith("Kampanje 1 er godkjent av berit (fingeravtrykk ")

        sent = runner.invoke(cli, send, env=env(settings))
        assert sent.exit_code == 0, sent.output
        assert sent.output.startswith("Kampanje 1 ferdig: ")
        assert len(sink.messages) > 0
    actions = [(e.actor, e.action) for e in audit.entries(registry_db)][-5:]
    assert actions == [
        ("berit", "sign_in"),
        ("berit", "campaign_lint"),
        ("berit", "campaign_approve"),
        (audit.cli_actor(), "campaign_send"),
        (audit.cli_actor(), "campaign_send_end"),
    ]


def test_cli_says_an_approval_whose_approver_was_disabled_no_longer_holds(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    runner = CliRunner()
    db = ["--db", registry_db.url]
    approval = approve(registry_db, settings, cid, people["berit"])
    status = runner.invoke(cli, [*db, "campaign", "status", str(cid)], env=env(settings))
    at = approval.approved_at[:16].replace("T", " ")
    assert status.output.splitlines()[1] == f"Godkjent av berit ({at} UTC)."

    disabled = runner.invoke(cli, [*db, "user", "disable", "berit"], env=env(settings))
    assert disabled.exit_code == 0, disabled.output
    assert disabled.output.splitlines() == [
        "«berit» er deaktivert; alle øktene er avsluttet.",
        "Godkjenningen fra «berit» av kampanje 1 gjelder ikke lenger: den må godkjennes på nytt "
        "før den sendes (videre).",
    ]
    status = runner.invoke(cli, [*db, "campaign", "status", str(cid)], env=env(settings))
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[1] == (
        "Godkjenningen av kampanje 1 gjelder ikke lenger: godkjenneren berit er deaktivert; "
        "den må godkjennes på nytt."
    )
    as_json = runner.invoke(cli, [*db, "campaign", "status", str(cid), "--json"])
    said = json.loads(as_json.output)["approval"]
    assert (said["holds"], said["latest"]["approved_by"]) == (False, "berit")
    assert said["reason"] == lapsed("godkjenneren berit er deaktivert")
    with SmtpSink() as sink:
        send = [*db, "campaign", "send", str(cid), "--smtp", sink.url]
        refused = runner.invoke(cli, send, env=env(settings))
        assert (refused.exit_code, refused.output) == (
            2,
            f"varsel: {lapsed('godkjenneren berit er deaktivert')}\n",
        )
        assert sink.messages == []


def test_cli_names_every_campaign_a_demoted_approver_approved_and_which_sends_now(
    registry_db: Database, settings: Settings, definition: Path, cid: int, people: dict[str, User]
) -> None:
    other = create_campaign(registry_db, settings, definition, created_by="kari").campaign.id
    for campaign_id in (cid, other):
        approve(registry_db, settings, campaign_id, people["berit"])
    # Let through the gate before the change (set here, not by a real send).
    registry_db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (other,))
    demoted = CliRunner().invoke(
        cli, ["--db", registry_db.url, "user", "set-role", "berit", "author"], env=env(settings)
    )
    assert demoted.exit_code == 0, demoted.output
    assert demoted.output.splitlines() == [
        "«berit» har nå rollen «forfatter».",
        f"Godkjenningene fra «berit» av kampanje {cid} og {other} gjelder ikke lenger: de må "
        "godkjennes på nytt før de sendes (videre).",
        f"Kampanje {other} sendes nå og fortsetter; stopp den med «varsel campaign pause {other}».",
    ]


def test_cli_send_without_approval_only_when_asked_and_allowed(
    registry_db: Database, settings: Settings, cid: int
) -> None:
    runner = CliRunner()
    with SmtpSink() as sink:
        send = ["--db", registry_db.url, "campaign", "send", str(cid), "--smtp", sink.url]
        forbidden = runner.invoke(
            cli, [*send, "--no-approval"], env=env(settings, VARSEL_ALLOW_NO_APPROVAL="false")
        )
        assert forbidden.exit_code == 2
        assert forbidden.output == (
            "varsel: sending uten godkjenning er slått av her (VARSEL_ALLOW_NO_APPROVAL=false); "
            "kampanje 1 må godkjennes\n"
        )
        assert sink.messages == []
        allowed = runner.invoke(cli, [*send, "--no-approval"], env=env(settings))
        assert allowed.exit_code == 0, allowed.output
        assert len(sink.messages) > 0
    (entry,) = audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND)
    assert entry.data["no_approval"] is True


def test_cli_shows_the_digest_and_approves_only_that(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    berit = registry_db.scalar("SELECT totp_secret FROM users WHERE name = 'berit'")
    runner = CliRunner()
    approve_cmd = ["--db", registry_db.url, "campaign", "approve", str(cid)]
    shown = fingerprint(registry_db, cid)
    listed = runner.invoke(cli, [*approve_cmd, "--show"], env=env(settings))
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        *(f"{name:<26} {shown.parts[part]}" for part, name in PARTS.items()),
        f"{'fingeravtrykk':<26} {shown.digest}",
        f"Godkjenn nettopp dette: varsel campaign approve 1 --user NAVN --digest {shown.digest}",
    ]
    update_spec(registry_db, cid, edited(registry_db, cid, from_name="Noen andre"), actor="kari")
    per = operator(registry_db, settings, "per", "approver")  # a code of their own to sign in
    stale = runner.invoke(
        cli, [*approve_cmd, "--user", "per", "--digest", shown.digest], env=env(settings, per)
    )
    assert stale.exit_code == 2
    assert stale.output.startswith("varsel: kampanje 1 er endret siden fingeravtrykket ble vist: ")
    assert registry_db.scalar("SELECT count(*) FROM approvals") == 0
    now = fingerprint(registry_db, cid).digest
    approved = runner.invoke(
        cli, [*approve_cmd, "--user", "berit", "--digest", now], env=env(settings, berit)
    )
    assert approved.exit_code == 0, approved.output
    assert approved.output.startswith(f"Kampanje 1 er godkjent av berit (fingeravtrykk {now[:16]})")


def test_cli_a_mistyped_digest_is_told_before_signing_in(
    registry_db: Database, settings: Settings, cid: int
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "approve", "1", "--user", "berit", "--digest", "x"],
        env=env(settings),
    )
    assert result.exit_code == 2
    assert result.output == (
        "varsel: fingeravtrykket «x» er ikke gyldig: det har 64 tegn 0–9 og a–f "
        "(varsel campaign approve 1 --show viser det)\n"
    )
    assert audit.entries(registry_db, action=audit.Action.SIGN_IN_FAILED) == []


def test_cli_a_campaign_that_cannot_be_approved_is_told_before_signing_in(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # Before, the approver typed a password and a code (used up) to hear this.
    runner = CliRunner()
    db = ["--db", registry_db.url]
    berit = registry_db.scalar("SELECT totp_secret FROM users WHERE name = 'berit'")
    approve_cmd = [*db, "campaign", "approve"]
    unknown = runner.invoke(cli, [*approve_cmd, "99", "--user", "berit"], env=env(settings))
    assert (unknown.exit_code, unknown.output) == (2, "varsel: kampanje 99 finnes ikke\n")
    approved = runner.invoke(
        cli, [*approve_cmd, str(cid), "--user", "berit"], env=env(settings, berit)
    )
    assert approved.exit_code == 0, approved.output
    again = runner.invoke(cli, [*approve_cmd, str(cid), "--user", "berit"], env=env(settings))
    assert again.exit_code == 2
    assert again.output.startswith(f"varsel: kampanje {cid} er allerede godkjent av berit (")
    set_status(registry_db, cid, CampaignStatus.CANCELLED)
    cancelled = runner.invoke(cli, [*approve_cmd, str(cid), "--user", "berit"], env=env(settings))
    assert cancelled.output == f"varsel: kampanje {cid} er «avbrutt» og kan ikke godkjennes\n"
    signed_in = [e.actor for e in audit.entries(registry_db, action=audit.Action.SIGN_IN)]
    assert signed_in == ["berit"]  # once, for the approval itself
    assert audit.entries(registry_db, action=audit.Action.SIGN_IN_FAILED) == []
