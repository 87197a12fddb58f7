"""DKIM keys and signatures, every one checked by an independent verifier (dkimpy)."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import dkim as dkimpy
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from varsel.dkim import (
    DkimKey,
    DkimKeyError,
    KeyFiles,
    Signer,
    canonical_body,
    canonical_header,
    generate_key,
    load_key,
)

DOMAIN = "nsr.no"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dkim")


@pytest.fixture(scope="module")
def rsa_files(keydir: Path) -> KeyFiles:
    return generate_key(keydir, DOMAIN, "varsel2023")


@pytest.fixture(scope="module")
def ed_files(keydir: Path) -> KeyFiles:
    return generate_key(keydir, DOMAIN, "varsel2023e", "ed25519")


def txt_from_record(record: str) -> bytes:
    """What a resolver hands back for a zone line: its quoted strings, joined."""
    return "".join(re.findall(r'"([^"]*)"', record)).encode("ascii")


def dns_for(*files: KeyFiles) -> Callable[..., bytes | None]:
    records = {f"{f.key.dns_name}.".encode(): txt_from_record(f.dns_record()) for f in files}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return dnsfunc


def verify_all(message: bytes, *files: KeyFiles) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature in the message, top first."""
    checker = dkimpy.DKIM(message)
    count = len(re.findall(rb"^DKIM-Signature:", message, re.MULTILINE | re.IGNORECASE))
    verdicts = []
    for i in range(count):
        try:
            verdicts.append(bool(checker.verify(i, dnsfunc=dns_for(*files))))
        except dkimpy.DKIMException:  # DKIM.verify raises on some failures, such as body hashes
            verdicts.append(False)
    return verdicts


MESSAGE = (
    b"From: =?utf-8?b?TsOmcmluZ3NsaXZldHMgc2lra2VyaGV0c3LDpWQ=?= <varsel@nsr.no>\r\n"
    b"To: post@firma.no\r\n"
    b"Subject: =?utf-8?b?U2lra2VyaGV0c2luZm9ybWFzam9uIHRpbCB2aXJrc29taGV0ZXIgaSBPc2xvLCBB?=\r\n"
    b" =?utf-8?b?c2tlciBvZyBCw6ZydW0=?=\r\n"
    b"Date: Thu, 19 Jan 2023 09:00:00 +0100\r\n"
    b"Message-ID: <17.abc@nsr.no>\r\n"
    b"List-Unsubscribe: <https://varsel.politiet.no/avmelding/tok3n>,\r\n"
    b"\t<mailto:avmelding@nsr.no?subject=unsubscribe-tok3n>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"X-Long:   a value   with\t\truns of   spaces   \r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hei,  \r\n"
    b"\r\n"
    b"linje med\ttabulator og   mellomrom \t\r\n"
    b"\r\n"
    b"\r\n"
)


def test_rsa_signature_verifies(rsa_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key]).sign(MESSAGE)
    assert signed.endswith(MESSAGE)
    assert verify_all(signed, rsa_files) == [True]
    assert b"a=rsa-sha256; c=relaxed/relaxed" in signed


def test_ed25519_signature_verifies(ed_files: KeyFiles) -> None:
    signed = Signer([ed_files.key]).sign(MESSAGE)
    assert verify_all(signed, ed_files) == [True]
    assert b"a=ed25519-sha256" in signed


def test_both_signatures_rsa_first(rsa_files: KeyFiles, ed_files: KeyFiles) -> None:
    signed = Signer([ed_files.key, rsa_files.key]).sign(MESSAGE)
    assert verify_all(signed, rsa_files, ed_files) == [True, True]
    algorithms = re.findall(rb"a=([a-z0-9-]+);", signed)
    assert algorithms == [b"rsa-sha256", b"ed25519-sha256"]


def test_signature_tags(rsa_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key]).sign(MESSAGE, timestamp=1674115200)
    field = signed[: signed.index(b"\r\nFrom:")].decode()
    tags = dict(
        tag.strip().split("=", 1)
        for tag in re.sub(r"\r\n[ \t]", " ", field).split(":", 1)[1].split(";")
    )
    assert tags["v"] == "1"
    assert tags["d"] == DOMAIN
    assert tags["s"] == "varsel2023"
    assert tags["t"] == "1674115200"
    names = [n.strip() for n in tags["h"].split(":")]
    assert names.count("from") == 2  # over-signed: a second From breaks the signature
    for name in [
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ]:
        assert name in names
    assert all(len(line) <= 78 for line in field.split("\r\n"))


def test_long_folded_headers_and_non_ascii_subjects(
    rsa_files: KeyFiles, ed_files: KeyFiles
) -> None:
    long_to = ",\r\n ".join(f"mottaker{i}@firma{i}.no" for i in range(30))
    message = (
        b"From: varsel@nsr.no\r\nTo: " + long_to.encode() + b"\r\n"
        b"Subject: =?utf-8?q?=C3=86rlig_talt=3A_=C3=B8ver_=C3=A5_sikre?=\r\n"
        b"\t =?utf-8?q?bedriften?=\r\n\r\nTekst\r\n"
    )
    signed = Signer([rsa_files.key, ed_files.key]).sign(message)
    assert verify_all(signed, rsa_files, ed_files) == [True, True]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n\r\n",
        b"no final line break",
        b"trailing spaces   \r\n\t\r\n  \r\n",
        b"  leading and   inner \t runs\r\n",
    ],
)
def test_body_edge_cases_verify(rsa_files: KeyFiles, body: bytes) -> None:
    message = b"From: varsel@nsr.no\r\nTo: post@firma.no\r\nSubject: x\r\n\r\n" + body
    assert verify_all(Signer([rsa_files.key]).sign(message), rsa_files) == [True]


def test_lf_only_message_is_signed_with_crlf(rsa_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key]).sign(b"From: varsel@nsr.no\nSubject: x\n\nhei\n")
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert verify_all(signed, rsa_files) == [True]


SIGNED_FIELDS = [
    (b"From: =?utf-8?b?TsOmcmluZ3NsaXZldHMgc2lra2VyaGV0c3LDpWQ=?= <varsel", b"From: Evil <varsel"),
    (b"To: post@firma.no", b"To: other@firma.no"),
    (b"Date: Thu, 19 Jan 2023 09:00:00 +0100", b"Date: Thu, 19 Jan 2023 09:00:01 +0100"),
    (b"Message-ID: <17.abc@nsr.no>", b"Message-ID: <18.abc@nsr.no>"),
    (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
    (b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html; charset=utf-8"),
    (b"\t<mailto:avmelding@nsr.no?subject=unsubscribe-tok3n>", b"\t<mailto:evil@x.test>"),
]  # fmt: skip


@pytest.mark.parametrize(("original", "changed"), SIGNED_FIELDS)
def test_changing_a_signed_field_breaks_both_signatures(
    rsa_files: KeyFiles, ed_files: KeyFiles, original: bytes, changed: bytes
) -> None:
    signed = Signer([rsa_files.key, ed_files.key]).sign(MESSAGE)
    assert original in signed
    assert verify_all(signed.replace(original, changed), rsa_files, ed_files) == [False, False]


def test_changing_the_subject_breaks_the_signature(rsa_files: KeyFiles, ed_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key, ed_files.key]).sign(MESSAGE)
    tampered = signed.replace(b"c2tlciBvZyBCw6ZydW0=", b"c2tlciBvZyBCw6ZydW1=")
    assert tampered != signed
    assert verify_all(tampered, rsa_files, ed_files) == [False, False]


@pytest.mark.parametrize(
    "added",
    [b"From: Evil <ceo@nsr.no>\r\n", b"Subject: Betal fakturaen\r\n", b"Reply-To: evil@x.test\r\n"],
)
def test_adding_an_over_signed_field_breaks_the_signature(
    rsa_files: KeyFiles, ed_files: KeyFiles, added: bytes
) -> None:
    signed = Signer([rsa_files.key, ed_files.key]).sign(MESSAGE)
    at = signed.index(b"From:")
    for tampered in (
        signed[:at] + added + signed[at:],
        signed.replace(b"\r\n\r\n", b"\r\n" + added + b"\r\n", 1),
    ):
        assert verify_all(tampered, rsa_files, ed_files) == [False, False]


def test_changing_the_body_breaks_the_signature(rsa_files: KeyFiles, ed_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key, ed_files.key]).sign(MESSAGE)
    for tampered in (signed.replace(b"Hei,", b"Hai,"), signed + b"P.S. klikk her\r\n"):
        assert verify_all(tampered, rsa_files, ed_files) == [False, False]


def test_whitespace_changes_that_relaxed_allows_still_verify(rsa_files: KeyFiles) -> None:
    signed = Signer([rsa_files.key]).sign(MESSAGE)
    relaxed = signed.replace(b"To: post@firma.no", b"to:   post@firma.no  ").replace(
        b"Hei,  \r\n", b"Hei,\r\n"
    )
    assert verify_all(relaxed, rsa_files) == [True]


def test_canonical_forms_follow_rfc_6376_examples() -> None:
    # RFC 6376 §3.4.5: "A: <SP> X <CRLF> B <SP> : <SP> Y <HTAB><CRLF> <HTAB> Z <SP><SP><CRLF>"
    assert canonical_header(b"A: X") == b"a:X\r\n"
    assert canonical_header(b"B : Y\t\r\n\tZ  ") == b"b:Y Z\r\n"
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert canonical_body(b"") == b""
    assert canonical_body(b"\r\n\r\n") == b""


def test_private_key_file_is_0600_and_dns_record_is_split(rsa_files: KeyFiles) -> None:
    assert stat.S_IMODE(rsa_files.private_key.stat().st_mode) == 0o600
    record = rsa_files.dns_record()
    assert record.startswith('varsel2023._domainkey.nsr.no. IN TXT "v=DKIM1; k=rsa; p=MIIB')
    strings = re.findall(r'"([^"]*)"', record)
    assert len(strings) == 2
    assert all(len(s) <= 255 for s in strings)
    assert rsa_files.dns_file.read_text() == record + "\n"


def test_ed25519_dns_record(ed_files: KeyFiles) -> None:
    assert re.fullmatch(
        r'varsel2023e\._domainkey\.nsr\.no\. IN TXT "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="',
        ed_files.dns_record(),
    )


def test_existing_key_is_never_overwritten(keydir: Path, rsa_files: KeyFiles) -> None:
    before = rsa_files.private_key.read_bytes()
    with pytest.raises(DkimKeyError, match="nøkkelen finnes allerede"):
        generate_key(keydir, DOMAIN, "varsel2023")
    assert rsa_files.private_key.read_bytes() == before


def test_idn_domain_becomes_a_label(tmp_path: Path) -> None:
    files = generate_key(tmp_path, "Sikkerhetsråd.no", "s1", "ed25519")
    assert (
        files.key.domain == "xn--sikkerhetsrd-3cb.no" == "sikkerhetsråd.no".encode("idna").decode()
    )
    assert files.dns_record().startswith("s1._domainkey.xn--sikkerhetsrd-3cb.no. IN TXT")


@pytest.mark.parametrize(
    ("domain", "selector", "algorithm", "message"),
    [
        ("nsr", "s1", "rsa", "ugyldig domene for DKIM: «nsr»"),
        ("nsr.no", "s 1", "rsa", "ugyldig DKIM-selektor: «s 1» (bruk bokstaver, tall og -)"),
        ("nsr.no", "s1", "dsa", "ukjent DKIM-algoritme: «dsa» (bruk rsa eller ed25519)"),
    ],
)
def test_generate_key_refuses_bad_input(
    tmp_path: Path, domain: str, selector: str, algorithm: str, message: str
) -> None:
    with pytest.raises(DkimKeyError) as caught:
        generate_key(tmp_path, domain, selector, algorithm)
    assert caught.value.message == message
    assert caught.value.exit_status == 2


def test_load_key_round_trip(rsa_files: KeyFiles, ed_files: KeyFiles) -> None:
    rsa_key = load_key(rsa_files.private_key, DOMAIN, "varsel2023")
    ed_key = load_key(ed_files.private_key, DOMAIN, "varsel2023e")
    assert (rsa_key.algorithm, ed_key.algorithm) == ("rsa", "ed25519")
    assert rsa_key.dns_record() == rsa_files.dns_record()
    signed = Signer([rsa_key, ed_key]).sign(MESSAGE)
    assert verify_all(signed, rsa_files, ed_files) == [True, True]


def test_load_key_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(
        DkimKeyError, match=r"missing\.pem: kan ikke lese DKIM-nøkkelen: finnes ikke$"
    ):
        load_key(missing, DOMAIN, "s1")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DkimKeyError, match=r"garbage\.pem: ikke en privat nøkkel i PEM-format\Z"):
        load_key(garbage, DOMAIN, "s1")
    public_only = tmp_path / "public.pem"
    public_only.write_text(
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(DkimKeyError, match="ikke en privat nøkkel"):
        load_key(public_only, DOMAIN, "s1")


def test_signer_needs_a_key_and_from() -> None:
    with pytest.raises(DkimKeyError, match="ingen DKIM-nøkkel"):
        Signer([])


def test_signer_refuses_a_header_list_without_from(rsa_files: KeyFiles) -> None:
    key: DkimKey = rsa_files.key
    with pytest.raises(DkimKeyError, match="må dekke From"):
        Signer([key], headers=["to", "subject"])


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"a", b"b", b" ", b"\t", b"\r\n", b"  "]), max_size=40))
def test_body_canonicalisation_agrees_with_dkimpy(pieces: list[bytes]) -> None:
    # As SMTP carries it: DATA always ends in CRLF. (For a body that does not, dkimpy keeps the
    # spaces of the last line, "a " -> "a \r\n"; varsel drops them as the receiver will once
    # the CRLF is added in transit.)
    body = b"".join(pieces) + b"\r\n"
    assert canonical_body(body) == Relaxed.canonicalize_body(body)


@settings(max_examples=300)
@given(
    st.sampled_from([b"Subject", b"subject ", b"X-A"]),
    st.lists(st.sampled_from([b"v", b"w", b" ", b"\t", b"\r\n ", b"\r\n\t"]), max_size=20),
)
def test_header_canonicalisation_agrees_with_dkimpy(name: bytes, pieces: list[bytes]) -> None:
    value = b"".join(pieces)
    [(dk_name, dk_value)] = Relaxed.canonicalize_headers([(name, value)])
    assert canonical_header(name + b":" + value) == dk_name + b":" + dk_value


def test_a_key_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", "utf-8")
    folder = tmp_path / "file" / "keys"
    with pytest.raises(DkimKeyError) as caught:
        generate_key(folder, "x.no", "varsel")
    assert caught.value.message == (
        f"{folder}: nøkkelmappen kan ikke lages: en del av stien er ikke en mappe"
    )
