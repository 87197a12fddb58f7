"""The Altinn 3 Correspondence API and its Maskinporten login, over HTTP.

Login (docs/altinn.md has the sources):

1. a JWT grant (RFC 7523) signed RS256 with the client's key: header alg and kid; claims aud
   (Maskinporten's issuer), iss (client id), iat, exp (at most 120 s later), jti, scope;
2. POST to Maskinporten's /token (form: grant_type=jwt-bearer, assertion) → access_token;
3. GET {altinn}/authentication/api/v1/exchange/maskinporten with it as bearer → Altinn token.

The Altinn token is used for `/correspondence/api/v1/correspondence` until shortly before the
Maskinporten token would expire, and fetched anew once if Altinn answers 401. One client may be
used by several threads at once: they share the token, and a lock makes one login for all of
them.

Every request is retried on 429 and 5xx and on network errors, waiting what Retry-After says
(or 1, 2, 4 … s); a POST is safe to repeat because each carries its delivery's idempotency key.
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from varsel.config import Settings
from varsel.digits import ascii_digits
from varsel.errors import N_, Text, UserError, os_reason
from varsel.unit import valid_orgnr

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_LIFETIME = 120  # seconds; Maskinporten refuses grants with exp - iat > 120
EXCHANGE_PATH = "/authentication/api/v1/exchange/maskinporten"
CORRESPONDENCE_PATH = "/correspondence/api/v1/correspondence"
ORGANISATION_URN = "urn:altinn:organization:identifier-no:"
# Altinn's error codes that are about one recipient, not the request as a whole: the next
# recipient may well succeed.
RECIPIENT_ERRORS = frozenset(
    {
        1029,  # no party for the recipient (not in Altinn's register)
        1030,  # the recipient has reserved itself against digital messages (KRR)
        1044,  # the recipient lacks the roles the resource requires
    }
)
DUPLICATE_KEY = 1034  # 409: a correspondence with this idempotent key already exists
_TOKEN_MARGIN = 30.0  # seconds before expiry at which a token is renewed
_MAX_WAIT = 300.0  # a Retry-After longer than this ends the run instead of waiting
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class AltinnError(UserError):
    """Altinn cannot be used as asked."""


class AltinnConfigError(AltinnError):
    """The Altinn settings are incomplete or wrong."""


class AltinnAuthError(AltinnError):
    """Maskinporten or Altinn refused the login."""


class AltinnUnavailable(AltinnError):
    """Altinn did not answer, or asked us to wait, through every retry."""

    exit_status = 75  # EX_TEMPFAIL: run the command again later


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem details answer from Altinn, reduced to what an operator needs."""

    status: int
    code: int | None  # Altinn's errorCode, e.g. 1034
    detail: str

    def line(self) -> str:
        code = f" CORR-{self.code}" if self.code is not None else ""
        return f"HTTP {self.status}{code}: {self.detail}"

    @property
    def recipient_specific(self) -> bool:
        return self.code in RECIPIENT_ERRORS


class AltinnRejected(AltinnError):
    """Altinn refused a request (4xx)."""

    def __init__(self, problem: Problem, what: str) -> None:
        super().__init__(f"Altinn avviste {what}: {problem.line()}")
        self.problem = problem


def read_problem(response: httpx.Response) -> Problem:
    """The problem in a 4xx/5xx answer, whatever shape its body has."""
    detail = ""
    code: int | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("errorCode")
        if isinstance(raw_code, int):
            code = raw_code
        detail = str(body.get("detail") or "")
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            # A validation problem: name every field and its first message.
            parts = [
                f"{field}: {msgs[0] if isinstance(msgs, list) and msgs else msgs}"
                for field, msgs in errors.items()
            ]
            detail = "; ".join(x for x in [detail, *parts] if x)
        detail = detail or str(body.get("title") or body.get("error_description") or "")
    elif response.text.strip():
        detail = response.text.strip()
    detail = " ".join(detail.split())[:300] or response.reason_phrase
    return Problem(response.status_code, code, detail)


# -- settings -------------------------------------------------------------------------------


def _url(value: str, setting: str) -> str:
    parts = urlsplit(value)
    # Plain http only to this machine: the contract tests' server. Anything else carries
    # tokens and must be TLS.
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if secure and parts.hostname:
        return value.rstrip("/")
    raise AltinnConfigError(f"{setting}: «{value}» må være en https-adresse")


@dataclass(frozen=True)
class AltinnConfig:
    """The Altinn settings, checked, with the client's private key read."""

    base_url: str
    token_url: str
    audience: str  # Maskinporten's issuer identifier: the token URL's origin with a slash
    client_id: str
    key_id: str
    private_key: rsa.RSAPrivateKey = dataclasses.field(repr=False)
    resource_id: str
    sender_orgnr: str
    scopes: str
    subscription_key: str = dataclasses.field(repr=False)
    timeout: float
    send_reminder: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> AltinnConfig:
        """Check the settings; every gap is named where it was set (variable or file and key)."""
        env = {f.name: settings.origin(f.name) for f in dataclasses.fields(Settings)}
        if not settings.altinn_enabled:
            raise AltinnConfigError(
                "Altinn-kanalen er slått av; sett VARSEL_ALTINN_ENABLED=true når Altinn-"
                "ressursen og Maskinporten-klienten er på plass (se docs/altinn.md)"
            )
        for name in (
            "altinn_client_id",
            "altinn_key_id",
            "altinn_private_key_file",
            "altinn_resource_id",
            "altinn_sender_orgnr",
            "altinn_scopes",
        ):
            if not str(getattr(settings, name)).strip():
                raise AltinnConfigError(f"{env[name]} mangler (se docs/altinn.md)")
        if not valid_orgnr(settings.altinn_sender_orgnr.strip()):
            raise AltinnConfigError(
                f"{env['altinn_sender_orgnr']}: «{settings.altinn_sender_orgnr}» er ikke et "
                "gyldig organisasjonsnummer"
            )
        token_url = _url(
            settings.altinn_maskinporten_token_url, env["altinn_maskinporten_token_url"]
        )
        origin = urlsplit(token_url)
        return cls(
            base_url=_url(settings.altinn_base_url, env["altinn_base_url"]),
            token_url=token_url,
            audience=f"{origin.scheme}://{origin.netloc}/",
            client_id=settings.altinn_client_id.strip(),
            key_id=settings.altinn_key_id.strip(),
            private_key=load_private_key(
                Path(settings.altinn_private_key_file).expanduser(),
                env["altinn_private_key_file"],
            ),
            resource_id=settings.altinn_resource_id.strip(),
            sender_orgnr=settings.altinn_sender_orgnr.strip(),
            scopes=" ".join(settings.altinn_scopes.split()),
            subscription_key=settings.altinn_subscription_key.strip(),
            timeout=settings.altinn_timeout,
            send_reminder=settings.altinn_send_reminder,
        )


def load_private_key(path: Path, setting: str) -> rsa.RSAPrivateKey:
    """The Maskinporten client's RSA key from a PEM file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AltinnConfigError(f"{setting}: {path} kan ikke leses ({os_reason(e)})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise AltinnConfigError(
            f"{setting}: {path} er ikke en PEM-fil med en privat nøkkel uten passord"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise AltinnConfigError(f"{setting}: {path} må være en RSA-nøkkel på minst 2048 bit")
    return key


# -- the JWT grant --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_grant(config: AltinnConfig, now: float) -> str:
    """A signed JWT grant for Maskinporten, valid for 120 seconds from now."""
    header = {"alg": "RS256", "kid": config.key_id}
    issued = int(now)
    claims = {
        "aud": config.audience,
        "iss": config.client_id,
        "scope": config.scopes,
        "iat": issued,
        "exp": issued + GRANT_LIFETIME,
        "jti": str(uuid.uuid4()),  # a grant is used once
    }
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = config.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64(signature)}"


# -- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """What Altinn said when it took a correspondence in."""

    correspondence_id: str
    status: str
    notifications: tuple[str, ...]  # each notification order's status: Success, MissingContact…


class AltinnStatus(StrEnum):
    """A correspondence's status in Altinn (CorrespondenceStatusExt, in its numeric order)."""

    INITIALIZED = "Initialized"  # created and validated
    READY_FOR_PUBLISH = "ReadyForPublish"  # attachments (if any) processed; not yet visible
    PUBLISHED = "Published"  # in the organisation's Altinn inbox
    FETCHED = "Fetched"  # the recipient's system or user fetched it
    READ = "Read"  # someone at the business opened it
    REPLIED = "Replied"
    CONFIRMED = "Confirmed"
    PURGED_BY_RECIPIENT = "PurgedByRecipient"
    PURGED_BY_ALTINN = "PurgedByAltinn"
    ARCHIVED = "Archived"
    RESERVED = "Reserved"  # the recipient has reserved itself against digital messages (KRR)
    FAILED = "Failed"  # publishing failed: unknown, bankrupt or deleted organisation, roles
    ATTACHMENTS_DOWNLOADED = "AttachmentsDownloaded"


def status_name(value: Any) -> str:
    """A correspondence status as its name, whether Altinn sent the name or the number."""
    if isinstance(value, int) and not isinstance(value, bool):
        members = list(AltinnStatus)
        return members[value].value if 0 <= value < len(members) else str(value)
    return str(value)


# -- why a delivery failed, in words ---------------------------------------------------------

# What `poll` records when Altinn does not know a correspondence (404): stored as its status
# text, after "Failed: ", since before this module said it in words.
NOT_FOUND = "finnes ikke i Altinn"
_PROBLEM_LINE = re.compile(r"HTTP (\d{3})(?: CORR-(\d+))?: (.*)", re.DOTALL)
# The refusals about one recipient (RECIPIENT_ERRORS), said for the operator.
_RECIPIENT_WORDS = {
    1029: N_("virksomheten finnes ikke i Altinns register"),
    1030: N_("virksomheten har reservert seg mot digitale meldinger"),
    1044: N_("virksomheten mangler rollene ressursen krever"),
}


def failure_text(stored: str) -> str:
    """Why an Altinn delivery failed, from its stored reason: a Text in Bokmål (the console
    shows it in its language), with Altinn's own words, if any, as Altinn wrote them.

    The store keeps what Altinn said: a refusal's problem line (`HTTP 422 CORR-1030: …`,
    Problem.line) or the status `poll` found (`Failed: <Altinn's status text>`, `Reserved`,
    `PurgedByAltinn`). Rows from every version are stored that way; anything else is shown
    as it is.
    """
    problem = _PROBLEM_LINE.fullmatch(stored)
    if problem is not None:
        status, code, detail = problem.groups()
        if code is None:
            return Text(
                "Altinn avviste meldingen. Altinns svar (HTTP %(status)s): %(detail)s",
                status=status,
                detail=detail,
            )
        why = _RECIPIENT_WORDS.get(int(code))
        if why is None:
            return Text(
                "Altinn avviste meldingen. Altinns svar (HTTP %(status)s, CORR-%(code)s): "
                "%(detail)s",
                status=status,
                code=code,
                detail=detail,
            )
        return Text(
            "Altinn avviste meldingen: %(why)s. Altinns svar (HTTP %(status)s, CORR-%(code)s): "
            "%(detail)s",
            why=Text(why),
            status=status,
            code=code,
            detail=detail,
        )
    status, _, detail = stored.partition(": ")
    if status == AltinnStatus.FAILED and detail == NOT_FOUND:
        return Text("Altinn finner ikke meldingen (svarte 404)")
    if status == AltinnStatus.FAILED:
        if not detail:
            return Text("Altinn kunne ikke publisere meldingen (status Failed)")
        return Text(
            "Altinn kunne ikke publisere meldingen. Altinns forklaring: %(detail)s",
            detail=detail,
        )
    if status == AltinnStatus.RESERVED:
        return Text("Virksomheten har reservert seg mot digitale meldinger (status Reserved)")
    if status in (AltinnStatus.PURGED_BY_ALTINN, AltinnStatus.PURGED_BY_RECIPIENT):
        return Text(
            "Meldingen ble slettet i Altinn før den ble publisert (status %(status)s)",
            status=status,
        )
    return stored


class AltinnClient:
    """Talks to Maskinporten and Altinn for one run; safe to use from several threads."""

    def __init__(
        self,
        config: AltinnConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._max_attempts = max_attempts
        headers = {"Accept": "application/json", "User-Agent": "varsel"}
        self._http = httpx.Client(timeout=config.timeout, headers=headers)
        # The Altinn token and when to renew it, read and written under the lock only: a login
        # holds it, so threads that need a token meanwhile wait for that login's.
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_until = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AltinnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------

    def _send(self, what: str, request: Callable[[], httpx.Response]) -> httpx.Response:
        """One request with retries on 429, 5xx and network errors."""
        last = ""
        for attempt in range(1, self._max_attempts + 1):
            wait = min(2.0 ** (attempt - 1), 60.0)
            try:
                response = request()
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                last = read_problem(response).line()
                asked = _retry_after(response.headers.get("Retry-After"), self._clock())
                if asked is not None:
                    if asked > _MAX_WAIT:
                        raise AltinnUnavailable(
                            f"{what}: Altinn ber oss vente {asked:.0f} s ({last}); "
                            "kjør kommandoen igjen senere"
                        )
                    wait = asked
            if attempt < self._max_attempts:
                self._sleep(wait)
        raise AltinnUnavailable(
            f"{what}: ikke svar etter {self._max_attempts} forsøk ({last}); "
            "kjør kommandoen igjen senere"
        )

    # -- login ----------------------------------------------------------------------------

    def _login(self) -> str:
        """Log in through Maskinporten; the caller holds the lock."""
        cfg = self.config
        now = self._clock()
        response = self._send(
            "Maskinporten",
            lambda: self._http.post(
                cfg.token_url, data={"grant_type": JWT_BEARER, "assertion": jwt_grant(cfg, now)}
            ),
        )
        body = _json_object(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            error = " ".join(
                str(body.get(k)) for k in ("error", "error_description") if body.get(k)
            )
            raise AltinnAuthError(
                f"Maskinporten avviste innloggingen (HTTP {response.status_code}"
                + (f": {error}" if error else "")
                + ")"
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 120.0
        maskinporten_token = body["access_token"]
        exchanged = self._send(
            "Altinn-innlogging",
            lambda: self._http.get(
                cfg.base_url + EXCHANGE_PATH, headers=self._headers(maskinporten_token)
            ),
        )
        if exchanged.status_code != 200:
            raise AltinnAuthError(
                f"Altinn godtok ikke Maskinporten-tokenet: {read_problem(exchanged).line()}"
            )
        # The token comes as the body itself; some gateways quote it as a JSON string.
        token = exchanged.text.strip().strip('"')
        if not token or any(c.isspace() for c in token):
            raise AltinnAuthError("Altinn svarte uten token på tokenvekslingen")
        self._token = token
        self._token_until = now + lifetime - _TOKEN_MARGIN
        return token

    def _altinn_token(self, refused: str | None = None) -> str:
        """A valid Altinn token; a new one if it is due, or if it is the one Altinn refused."""
        with self._lock:
            if self._token is None or self._clock() >= self._token_until:
                return self._login()
            if refused is not None and self._token == refused:
                return self._login()
            # Another thread logged in after this one's token was refused: use that login.
            return self._token

    def _headers(self, token: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if self.config.subscription_key:
            headers["Ocp-Apim-Subscription-Key"] = self.config.subscription_key
        return headers

    def _api(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the Correspondence API; logs in again once if the token is refused."""
        url = self.config.base_url + CORRESPONDENCE_PATH + path

        def call(token: str) -> httpx.Response:
            return self._send(
                what,
                lambda: self._http.request(method, url, headers=self._headers(token), **kwargs),
            )

        token = self._altinn_token()
        response = call(token)
        if response.status_code == 401:
            # The token may have been revoked or expired early.
            response = call(self._altinn_token(refused=token))
            if response.status_code == 401:
                raise AltinnAuthError(
                    f"Altinn godtar ikke innloggingen: {read_problem(response).line()}"
                )
        return response

    # -- the API --------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], what: str) -> Created | None:
        """Initialise one correspondence; None if its idempotent key was used before (409)."""
        response = self._api(what, "POST", "", json=body)
        if response.status_code == 409:
            problem = read_problem(response)
            if problem.code in (DUPLICATE_KEY, None):
                return None
            raise AltinnRejected(problem, what)
        if response.status_code != 200:
            raise AltinnRejected(read_problem(response), what)
        data = _json_object(response)
        items = data.get("correspondences")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise AltinnError(f"{what}: Altinn svarte uten én correspondence i svaret")
        item = items[0]
        notifications = tuple(
            str(n.get("status")) for n in item.get("notifications") or [] if isinstance(n, dict)
        )
        return Created(
            str(item["correspondenceId"]), status_name(item.get("status")), notifications
        )

    def find_by_key(self, idempotent_key: str, what: str) -> str | None:
        """The id of the correspondence made with this idempotent key, if there is one."""
        response = self._api(
            what,
            "GET",
            "",
            params={
                "resourceId": self.config.resource_id,
                "role": "Sender",
                "idempotentKey": idempotent_key,
            },
        )
        if response.status_code != 200:
            raise AltinnRejected(read_problem(response), what)
        ids = _json_object(response).get("ids")
        if not isinstance(ids, list):
            raise AltinnError(f"{what}: Altinn svarte uten liste over id-er")
        return str(ids[0]) if ids else None

    def details(self, correspondence_id: str, what: str) -> dict[str, Any]:
        """The correspondence's details: status, statusText, statusChanged, statusHistory…"""
        response = self._api(what, "GET", f"/{correspondence_id}/details")
        if response.status_code != 200:
            raise AltinnRejected(read_problem(response), what)
        return _json_object(response)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if it says."""
    if not value:
        return None
    value = value.strip()
    if ascii_digits(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
