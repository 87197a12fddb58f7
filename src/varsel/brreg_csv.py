"""The column layout of the registry's CSV dumps, and how it maps onto the JSON records.

The enheter header is the real one (90 columns, see shared fixtures). No real underenheter
header has been published in the sources we have; varsel uses the JSON keys of a sub-unit
flattened the same way as the enheter CSV, and also accepts the older column names.
"""

from __future__ import annotations

ADDRESS_FIELDS = (
    "adresse",
    "poststed",
    "postnummer",
    "kommune",
    "kommunenummer",
    "land",
    "landkode",
)

# The columns both CSV dumps start with, in this order.
_HEAD: tuple[str, ...] = (
    "organisasjonsnummer",
    "navn",
    "organisasjonsform.kode",
    "organisasjonsform.beskrivelse",
    "naeringskode1.kode",
    "naeringskode1.beskrivelse",
    "naeringskode2.kode",
    "naeringskode2.beskrivelse",
    "naeringskode3.kode",
    "naeringskode3.beskrivelse",
    "hjelpeenhetskode.kode",
    "hjelpeenhetskode.beskrivelse",
    "harRegistrertAntallAnsatte",
    "antallAnsatte",
    "registreringsdatoAntallAnsatteEnhetsregisteret",
    "registreringsdatoantallansatteNAVAaregisteret",
    "hjemmeside",
    "epostadresse",
    "telefon",
    "mobil",
)

ENHETER_COLUMNS: tuple[str, ...] = (
    *_HEAD,
    *(f"postadresse.{f}" for f in ADDRESS_FIELDS),
    *(f"forretningsadresse.{f}" for f in ADDRESS_FIELDS),
    "institusjonellSektorkode.kode",
    "institusjonellSektorkode.beskrivelse",
    "sisteInnsendteAarsregnskap",
    "registreringsdatoenhetsregisteret",
    "stiftelsesdato",
    "registrertIMvaRegisteret",
    "registreringsdatoMerverdiavgiftsregisteret",
    "registreringsdatoMerverdiavgiftsregisteretEnhetsregisteret",
    "frivilligMvaRegistrertBeskrivelser",
    "registreringsdatoFrivilligMerverdiavgiftsregisteret",
    "registrertIFrivillighetsregisteret",
    "registreringsdatoFrivillighetsregisteret",
    "registrertIForetaksregisteret",
    "registreringsdatoForetaksregisteret",
    "registrertIStiftelsesregisteret",
    "registrertIPartiregisteret",
    "registreringsdatoPartiregisteret",
    "konkurs",
    "konkursdato",
    "underAvvikling",
    "underAvviklingDato",
    "underTvangsavviklingEllerTvangsopplosning",
    "tvangsopplostPgaManglendeDagligLederDato",
    "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeRegnskapDato",
    "tvangsopplostPgaMangelfulltStyreDato",
    "tvangsavvikletPgaManglendeSlettingDato",
    "overordnetEnhet",
    "maalform",
    "vedtektsdato",
    "vedtektsfestetFormaal",
    "aktivitet",
    "paategninger",
    "underUtenlandskInsolvensbehandlingDato",
    "underRekonstruksjonsforhandlingDato",
    "fravalgRevisjonDato",
    "fravalgRevisjonBeslutningsDato",
    "erIKonsern",
    "kapital.belop",
    "kapital.antallAksjer",
    "kapital.type",
    "kapital.bundet",
    "kapital.valuta",
    "kapital.innbetalt",
    "kapital.fulltInnbetalt",
    "kapital.innfortDato",
    "registreringsnummerIHjemlandet",
    "utenlandskRegisterNavn",
    "utenlandskRegisterAdresse.land",
    "utenlandskRegisterAdresse.poststed",
    "utenlandskRegisterAdresse.adresse",
    "underlagtLovgivningLand",
    "underlagtLovgivningLandKode",
    "foretaksformIHjemlandet.kode",
    "foretaksformIHjemlandet.beskrivelse",
    "foretaksformIHjemlandet.beskrivelseBokmaal",
)

UNDERENHETER_COLUMNS: tuple[str, ...] = (
    *_HEAD,
    *(f"postadresse.{f}" for f in ADDRESS_FIELDS),
    *(f"beliggenhetsadresse.{f}" for f in ADDRESS_FIELDS),
    "registreringsdatoenhetsregisteret",
    "frivilligMvaRegistrertBeskrivelser",
    "registrertIMvaRegisteret",
    "oppstartsdato",
    "datoEierskifte",
    "overordnetEnhet",
    "nedleggelsesdato",
)

# Older sub-unit column names seen in public loaders, accepted on import.
UNDERENHETER_ALIASES: dict[str, str] = {
    "registreringsdatoIEnhetsregisteret": "registreringsdatoenhetsregisteret",
    "registrertIMvaregisteret": "registrertIMvaRegisteret",
}

# CSV column names whose JSON key is spelled differently (the CSV's casing quirks).
JSON_KEY: dict[str, str] = {
    "registreringsdatoantallansatteNAVAaregisteret": (
        "registreringsdatoAntallAnsatteNAVAaregisteret"
    ),
    "registreringsdatoenhetsregisteret": "registreringsdatoEnhetsregisteret",
    "registrertIMvaRegisteret": "registrertIMvaregisteret",
}

# Fields that are JSON arrays; in the CSV their items are joined by newlines.
ARRAY_FIELDS = frozenset(
    {
        "adresse",
        "frivilligMvaRegistrertBeskrivelser",
        "vedtektsfestetFormaal",
        "aktivitet",
        "paategninger",
    }
)

# Fields that are JSON booleans; "true"/"false" in the CSV.
BOOLEAN_FIELDS = frozenset(
    {
        "harRegistrertAntallAnsatte",
        "registrertIMvaregisteret",
        "registrertIFrivillighetsregisteret",
        "registrertIForetaksregisteret",
        "registrertIStiftelsesregisteret",
        "registrertIPartiregisteret",
        "konkurs",
        "underAvvikling",
        "underTvangsavviklingEllerTvangsopplosning",
        "erIKonsern",
        "kapital.fulltInnbetalt",
    }
)

# Fields that are JSON numbers.
NUMBER_FIELDS = frozenset(
    {"antallAnsatte", "kapital.belop", "kapital.antallAksjer", "kapital.innbetalt"}
)


def _csv_name_to_path(name: str) -> tuple[str, str | None]:
    key = JSON_KEY.get(name, name)
    top, _, sub = key.partition(".")
    return top, sub or None


def encode_row(record: dict[str, object], columns: tuple[str, ...]) -> list[str]:
    """The CSV fields of a JSON-shaped record, the way the registry writes them."""
    out: list[str] = []
    for name in columns:
        top, sub = _csv_name_to_path(name)
        value = record.get(top)
        if sub is not None:
            value = value.get(sub) if isinstance(value, dict) else None
        if value is None:
            out.append("")
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, list):
            out.append("\n".join("" if v is None else str(v) for v in value))
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            out.append(str(value))
    return out
