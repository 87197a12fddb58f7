"""The VarselError tree: user errors carry a one-line message and exit status 2."""

from __future__ import annotations


class VarselError(Exception):
    """Something went wrong in varsel."""

    exit_status = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class UserError(VarselError):
    """The input given to varsel is not usable."""

    exit_status = 2


class BadFileError(UserError):
    """The file is not a registry dump varsel can read."""


class BadCriteriaError(UserError):
    """The selection criteria are not valid."""


class ConfigError(UserError):
    """The settings are not valid."""


class StoreError(UserError):
    """The store cannot be opened or is not a varsel store."""


class DownloadError(UserError):
    """The registry dump could not be downloaded."""
