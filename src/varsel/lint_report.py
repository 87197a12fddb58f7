"""What the linter found in a campaign: findings, each an error or a warning, and the report."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How much a finding matters."""

    ERROR = "error"  # the campaign must not be sent as it is
    WARNING = "warning"  # worth a look; sending is allowed


@dataclass(frozen=True)
class Finding:
    """One problem the linter found: what, and in which language's message (None: campaign)."""

    severity: Severity
    code: str
    language: str | None
    message: str  # Bokmål, as the CLI prints it; a Text, so that the console can translate it

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "language": self.language,
            "message": self.message,
        }


def error(code: str, language: str | None, message: str) -> Finding:
    """A finding that stops the campaign."""
    return Finding(Severity.ERROR, code, language, message)


def warning(code: str, language: str | None, message: str) -> Finding:
    """A finding worth a look."""
    return Finding(Severity.WARNING, code, language, message)


@dataclass(frozen=True)
class LintReport:
    """Everything the linter found in one campaign, errors first."""

    campaign_id: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.as_dict() for f in self.findings]}

    def summary(self) -> str:
        counts = (
            f"{_count(self.errors, 'feil', 'feil')}, "
            f"{_count(self.warnings, 'advarsel', 'advarsler')}"
        )
        if self.ok:
            return f"Kampanje {self.campaign_id} kan sendes: {counts}."
        return (
            f"Kampanje {self.campaign_id} kan ikke sendes ennå: {counts}. "
            "Rett feilene og kjør lint igjen."
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
