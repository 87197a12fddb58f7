"""A contract server for Maskinporten and Altinn 3 Correspondence, on loopback.

Altinn cannot be reached from here, so the tests named *contract* talk to this: it implements
the documented endpoints varsel uses and is strict about what it is sent.

- POST /token: Maskinporten's JWT grant (RFC 7523). The grant must be RS256, signed by the
  registered key (kid), with exactly the documented claims: aud (the issuer, one value), iss
  (client id), iat (within 10 s), exp (at most 120 s after iat), jti (never reused), scope
  (only registered scopes).
- GET /authentication/api/v1/exchange/maskinporten: a Maskinporten token as bearer; the Altinn
  token comes back as the body.
- POST /correspondence/api/v1/correspondence: InitializeCorrespondencesExt, checked field by
  field (names, types, lengths, languages, one recipient as an organisation URN, a GUID
  idempotentKey used once: 409 with errorCode 1034 after that, notification texts for the
  chosen channel and template, no links in them); the Altinn token with the write scope.
- GET /correspondence/api/v1/correspondence?resourceId=&role=Sender&idempotentKey=: {"ids": …}.
- GET /correspondence/api/v1/correspondence/{id}/details: status, statusText, statusHistory.

Errors are RFC 9457 problem details with Altinn's errorCode, as Altinn sends them.

For the tests of concurrent sending and polling it can answer slowly (`delay`), count how many
correspondence requests it is working on at once (`most_at_once`), go down after making a
number of correspondences (`down_after`: 503 to every new one from then on), and go down after
answering a number of status requests (`details_down_after`: 503 to every one from then on).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from varsel.unit import valid_orgnr

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ORG_URN = re.compile(r"urn:altinn:organization:identifier-no:(\d{9})\Z")
SENDER = re.compile(r"(\d{4}:\d{9}|urn:altinn:organization:identifier-no:\d{9})\Z")
GRANT_CLAIMS = {"aud", "iss", "iat", "exp", "jti", "scope", "resource"}
TOP_FIELDS = {"correspondence", "recipients", "existingAttachments", "idempotentKey"}
CORRESPONDENCE_FIELDS = {
    "resourceId",
    "sender",
    "sendersReference",
    "messageSender",
    "content",
    "requestedPublishTime",
    "allowSystemDeleteAfter",
    "dueDateTime",
    "externalReferences",
    "propertyList",
    "replyOptions",
    "notification",
    "ignoreReservation",
    "isConfirmationNeeded",
}
CONTENT_FIELDS = {"language", "messageTitle", "messageSummary", "messageBody", "attachments"}
NOTIFICATION_FIELDS = {
    "notificationTemplate",
    "notificationChannel",
    "emailSubject",
    "emailBody",
    "smsBody",
    "sendReminder",
    "reminderNotificationChannel",
    "reminderEmailSubject",
    "reminderEmailBody",
    "reminderSmsBody",
    "sendersReference",
    "requestedSendTime",
    "customNotificationRecipients",
}
TEMPLATES = {"CustomMessage", "GenericAltinnMessage"}
CHANNELS = {"Email", "Sms", "EmailPreferred", "SmsPreferred", "EmailAndSms"}
LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
MARKUP = re.compile(r"[<>]|^\s*#|\*\*|\]\(", re.MULTILINE)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Refused(Exception):
    """A request the contract does not allow: the answer to give instead."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def problem(status: int, code: int, detail: str) -> Refused:
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    titles |= {409: "Conflict", 415: "Unsupported Media Type", 422: "Unprocessable Entity"}
    return Refused(
        status,
        {
            "type": "https://tools.ietf.org/html/rfc9110",
            "title": titles.get(status, "Error"),
            "status": status,
            "detail": detail,
            "code": f"CORR-{code:05d}",
            "errorCode": code,
        },
    )


def invalid(field_name: str, message: str) -> Refused:
    """An ASP.NET model-validation problem, as Altinn sends for a malformed body."""
    return Refused(
        400,
        {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": {field_name: [message]},
        },
    )


def grant_error(description: str) -> Refused:
    return Refused(400, {"error": "invalid_grant", "error_description": description})


@dataclass
class Token:
    scopes: frozenset[str]
    expires: float


@dataclass
class Correspondence:
    id: str
    recipient: str
    key: str | None
    request: dict[str, Any]
    created: str
    history: list[tuple[str, str]] = field(default_factory=list)  # (status, statusText)

    @property
    def status(self) -> str:
        return self.history[-1][0]


@dataclass
class Fault:
    """A planned answer to the next correspondence request instead of the normal one."""

    status: int = 0  # answer this status before doing anything (429, 503 …)
    headers: dict[str, str] = field(default_factory=dict)
    drop_after_create: bool = False  # create, then close the connection without an answer
    hold_after_create: bool = False  # create, then wait for release() before answering


class AltinnServer:
    """Maskinporten and Altinn Correspondence on 127.0.0.1, for contract tests."""

    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        client_id: str,
        key_id: str,
        resource_id: str,
        sender_orgnr: str,
        scopes: frozenset[str] = frozenset({"altinn:correspondence.write"}),
        token_lifetime: int = 120,
    ) -> None:
        self.public_key = public_key
        self.client_id = client_id
        self.key_id = key_id
        self.resource_id = resource_id
        self.sender_orgnr = sender_orgnr
        self.scopes = scopes
        self.token_lifetime = token_lifetime
        self.lock = threading.Lock()
        self.correspondences: dict[str, Correspondence] = {}
        self.grants: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (header, claims)
        self.jtis: set[str] = set()
        self.maskinporten_tokens: dict[str, Token] = {}
        self.altinn_tokens: dict[str, Token] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: deque[Fault] = deque()
        self.reserved: set[str] = set()  # orgnrs that answer 422 / 1030
        self.delay = 0.0  # seconds every request waits before it is answered
        self.down_after: int | None = None  # 503 to new correspondences once this many exist
        self.details_down_after: int | None = None  # 503 to details once this many answered
        self.details_answered = 0  # details requests answered with 200
        self.at_once = 0  # correspondence requests being worked on now
        self.most_at_once = 0  # the most there have been at the same time
        self.created = threading.Event()
        self.released = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.contract = self  # type: ignore[attr-defined]
        port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.issuer = self.base_url + "/"
        self.token_url = self.base_url + "/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> AltinnServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what tests set and read ------------------------------------------------------------

    def set_status(self, correspondence_id: str, status: str, text: str = "") -> None:
        with self.lock:
            self.correspondences[correspondence_id].history.append((status, text))

    def by_recipient(self, orgnr: str) -> list[Correspondence]:
        urn = f"urn:altinn:organization:identifier-no:{orgnr}"
        return [c for c in self.correspondences.values() if c.recipient == urn]

    def revoke_tokens(self) -> None:
        with self.lock:
            self.altinn_tokens.clear()

    # -- Maskinporten -----------------------------------------------------------------------

    def token(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            raise Refused(400, {"error": "invalid_request", "error_description": "form only"})
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
        if form.get("grant_type") != [JWT_BEARER]:
            raise Refused(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", [""])
        if len(assertion) != 1 or set(form) != {"grant_type", "assertion"}:
            raise Refused(400, {"error": "invalid_request"})
        header, claims = self._check_grant(assertion[0])
        scopes = frozenset(claims["scope"].split(" "))
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.grants.append((header, claims))
            self.maskinporten_tokens[token] = Token(scopes, time.time() + self.token_lifetime)
        answer = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": claims["scope"],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _check_grant(self, jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
        parts = jwt.split(".")
        if len(parts) != 3:
            raise grant_error("Invalid assertion. Not a JWT.")
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except ValueError:
            raise grant_error("Invalid assertion. Not a JWT.") from None
        if header.get("alg") != "RS256" or "x5c" in header or header.get("kid") != self.key_id:
            raise grant_error("Invalid assertion. Client authentication failed. Unknown key.")
        try:
            self.public_key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise grant_error("Invalid assertion. Client authentication failed.") from None
        if set(claims) - GRANT_CLAIMS:
            raise grant_error(
                f"Invalid assertion. Unknown claims {sorted(set(claims) - GRANT_CLAIMS)}"
            )
        now = time.time()
        if claims.get("aud") != self.issuer:
            raise grant_error(
                "Invalid assertion. Client authentication failed. Invalid JWT claim aud"
            )
        if claims.get("iss") != self.client_id:
            raise grant_error("Invalid assertion. Unknown client.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or abs(iat - now) > 10:
            raise grant_error("Invalid assertion. iat must be within 10 s of our clock.")
        if not 0 < exp - iat <= 120 or exp <= now:
            raise grant_error("Invalid assertion. exp must be at most 120 s after iat.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or jti in self.jtis:
            raise grant_error("Invalid assertion. The JWT has been used before.")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not set(scope.split(" ")) <= self.scopes:
            raise Refused(400, {"error": "invalid_scope", "error_description": str(scope)})
        self.jtis.add(jti)
        return header, claims

    # -- Altinn Authentication ----------------------------------------------------------------

    def exchange(self, headers: Any) -> tuple[int, dict[str, str], bytes]:
        token = self._bearer(headers, self.maskinporten_tokens)
        altinn = secrets.token_urlsafe(32)
        with self.lock:
            self.altinn_tokens[altinn] = Token(token.scopes, token.expires)
        return 200, {"Content-Type": "text/plain"}, altinn.encode()

    def _bearer(self, headers: Any, tokens: dict[str, Token]) -> Token:
        value = headers.get("Authorization", "")
        if not value.startswith("Bearer "):
            raise problem(401, 4001, "Missing bearer token")
        token = tokens.get(value[len("Bearer ") :])
        if token is None or token.expires <= time.time():
            raise problem(401, 4001, "You must use an Altinn token")
        return token

    # -- Correspondence -------------------------------------------------------------------------

    def correspondence(
        self, method: str, path: str, query: str, headers: Any, body: bytes, handler: _Handler
    ) -> tuple[int, dict[str, str], bytes] | None:
        # Counted from arrival, through the delay, until the answer is made, and counted down
        # before it is written: a client that keeps n requests in flight sends its next one
        # only after reading an answer, so this never sees more than n.
        with self.lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self._correspondence(method, path, query, headers, body, handler)
        finally:
            with self.lock:
                self.at_once -= 1

    def _correspondence(
        self, method: str, path: str, query: str, headers: Any, body: bytes, handler: _Handler
    ) -> tuple[int, dict[str, str], bytes] | None:
        token = self._bearer(headers, self.altinn_tokens)
        base = "/correspondence/api/v1/correspondence"
        if method == "POST" and path == base:
            if "altinn:correspondence.write" not in token.scopes:
                raise problem(403, 4001, "Missing scope altinn:correspondence.write")
            fault = self.faults.popleft() if self.faults else Fault()
            if fault.status:
                raise Refused(
                    fault.status, {"status": fault.status, "title": "planned"}, fault.headers
                )
            if headers.get("Content-Type", "").split(";")[0] != "application/json":
                raise problem(415, 0, "Content-Type must be application/json")
            created = self._create(body)
            if fault.drop_after_create:
                handler.close_connection = True
                return None
            if fault.hold_after_create:
                self.created.set()
                self.released.wait(60)
            return 200, {"Content-Type": "application/json"}, json.dumps(created).encode()
        if method == "GET" and path == base:
            return self._list(query)
        match = re.fullmatch(base + r"/([0-9a-f-]{36})/details", path)
        if method == "GET" and match:
            return self._details(match.group(1))
        raise problem(404, 0, f"no such endpoint: {method} {path}")

    def _create(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except ValueError:
            raise invalid("$", "The JSON value could not be converted.") from None
        if not isinstance(request, dict):
            raise invalid("$", "an object is required")
        _only(request, TOP_FIELDS, "")
        corr = request.get("correspondence")
        recipients = request.get("recipients")
        if not isinstance(corr, dict):
            raise invalid("Correspondence", "The Correspondence field is required.")
        if not isinstance(recipients, list) or not recipients:
            raise invalid("Recipients", "The Recipients field is required.")
        for r in recipients:
            m = ORG_URN.match(r) if isinstance(r, str) else None
            if m is None or not valid_orgnr(m.group(1)):
                raise invalid("Recipients", f"invalid recipient {r!r}")
        key = request.get("idempotentKey")
        if key is not None:
            try:
                if uuid.UUID(str(key)) == uuid.UUID(int=0) or str(uuid.UUID(key)) != key:
                    raise ValueError(key)
            except ValueError:
                raise problem(
                    400, 1033, "The idempotency key must be a valid non-empty GUID"
                ) from None
            if len(recipients) != 1:
                raise problem(
                    400,
                    1047,
                    "Idempotency key is not supported for requests with multiple recipients",
                )
        self._check_correspondence(corr)
        orgnr = ORG_URN.match(recipients[0]).group(1)  # type: ignore[union-attr]
        with self.lock:
            if self.down_after is not None and len(self.correspondences) >= self.down_after:
                raise Refused(503, {"status": 503, "title": "Service Unavailable"})
            if key is not None and any(c.key == key for c in self.correspondences.values()):
                raise problem(
                    409, 1034, "A correspondence with the same idempotent key already exists"
                )
            if orgnr in self.reserved:
                raise problem(
                    422,
                    1030,
                    f"Recipient {orgnr} has reserved themselves from public correspondences. "
                    "Can be overridden using the 'IgnoreReservation' flag",
                )
            made = Correspondence(
                id=str(uuid.uuid4()),
                recipient=recipients[0],
                key=key,
                request=request,
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                history=[("Initialized", "Initialized")],
            )
            self.correspondences[made.id] = made
        return {
            "correspondences": [
                {
                    "correspondenceId": made.id,
                    "status": "Initialized",
                    "recipient": made.recipient,
                    "notifications": [
                        {"orderId": str(uuid.uuid4()), "isReminder": False, "status": "Success"}
                    ],
                }
            ],
            "attachmentIds": [],
        }

    def _check_correspondence(self, corr: dict[str, Any]) -> None:
        _only(corr, CORRESPONDENCE_FIELDS, "Correspondence.")
        if corr.get("resourceId") != self.resource_id:
            raise problem(
                400, 1036, "ResourceId must match an existing resource in the resource registry"
            )
        sender = corr.get("sender")
        if not isinstance(sender, str) or not SENDER.match(sender):
            raise invalid(
                "Correspondence.Sender",
                "Organization numbers should be on the form countrycode:organizationnumber, "
                "for instance 0192:910753614",
            )
        if sender.rsplit(":", 1)[1] != self.sender_orgnr:
            raise problem(401, 4001, "The sender is not the owner of the resource")
        reference = corr.get("sendersReference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 4096:
            raise invalid("Correspondence.SendersReference", "1 to 4096 characters")
        name = corr.get("messageSender")
        if name is not None and (
            not isinstance(name, str) or len(name) > 256 or MARKUP.search(name)
        ):
            raise problem(400, 1039, "Message sender must be plain text")
        content = corr.get("content")
        if not isinstance(content, dict):
            raise problem(400, 1019, "The Content field must be provided for the correspondence")
        _only(content, CONTENT_FIELDS, "Correspondence.Content.")
        if content.get("language") not in ("nb", "nn", "en"):
            raise problem(
                400,
                1023,
                "Invalid language chosen. Supported languages is Norsk bokmål (nb), "
                "Nynorsk (nn) and English (en)",
            )
        title, summary, body = (
            content.get(k) for k in ("messageTitle", "messageSummary", "messageBody")
        )
        if not isinstance(title, str) or not title.strip():
            raise problem(400, 1020, "Message title cannot be empty")
        if len(title) > 255:
            raise problem(400, 1037, "Message title cannot exceed 255 characters")
        if MARKUP.search(title) or "\n" in title:
            raise problem(400, 1002, "Message title must be plain text")
        if summary is not None and (not isinstance(summary, str) or len(summary) > 255):
            raise problem(
                400, 1042, "Message summary, if not null, must be between 0 and 255 characters long"
            )
        if isinstance(summary, str) and MARKUP.search(summary):
            raise problem(400, 1004, "Message summary must be plain text")
        if not isinstance(body, str) or not body.strip():
            raise problem(400, 1021, "Message body cannot be empty")
        if len(body) > 30000:
            raise problem(400, 1022, "Message body cannot exceed 30000 characters")
        if re.search(r"<[a-zA-Z/]", body):
            raise problem(400, 1003, "Message body must be markdown")
        notification = corr.get("notification")
        if notification is not None:
            self._check_notification(notification)

    @staticmethod
    def _check_notification(n: Any) -> None:
        if not isinstance(n, dict):
            raise invalid("Correspondence.Notification", "an object is required")
        _only(n, NOTIFICATION_FIELDS, "Correspondence.Notification.")
        if n.get("notificationTemplate") not in TEMPLATES:
            raise invalid("Correspondence.Notification.NotificationTemplate", "unknown template")
        if n.get("notificationChannel", "Email") not in CHANNELS:
            raise invalid("Correspondence.Notification.NotificationChannel", "unknown channel")
        if not isinstance(n.get("sendReminder", False), bool):
            raise invalid("Correspondence.Notification.SendReminder", "a boolean is required")
        limits = {"emailSubject": 128, "emailBody": 1024, "smsBody": 160}
        for name, limit in list(limits.items()):
            limits["reminder" + name[0].upper() + name[1:]] = limit
        for name, limit in limits.items():
            value = n.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > limit:
                raise invalid(f"Correspondence.Notification.{name}", f"at most {limit} characters")
            if LINK.search(value):
                raise invalid(
                    f"Correspondence.Notification.{name}",
                    "links must never be used in notifications",
                )
        if n["notificationTemplate"] == "CustomMessage":
            _need_texts(n, n.get("notificationChannel", "Email"), "", 3002, 3004, 3006)
            if n.get("sendReminder"):
                _need_texts(
                    n,
                    n.get("reminderNotificationChannel", n.get("notificationChannel", "Email")),
                    "reminder",
                    3003,
                    3005,
                    3007,
                )

    def _list(self, query: str) -> tuple[int, dict[str, str], bytes]:
        params = parse_qs(query)
        if params.get("role") not in (["Sender"], ["Recipient"]):
            raise invalid("role", "The role field is required.")
        if params.get("resourceId") != [self.resource_id]:
            raise problem(
                400, 1036, "ResourceId must match an existing resource in the resource registry"
            )
        key = params.get("idempotentKey", [None])[0]
        with self.lock:
            ids = [c.id for c in self.correspondences.values() if key is None or c.key == key]
        answer = {"ids": ids, "pagination": {"nextPage": None}}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _details(self, correspondence_id: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if (
                self.details_down_after is not None
                and self.details_answered >= self.details_down_after
            ):
                raise Refused(503, {"status": 503, "title": "Service Unavailable"})
            c = self.correspondences.get(correspondence_id)
            if c is None:
                raise problem(404, 1001, "The requested correspondence was not found")
            self.details_answered += 1
            history = [
                {"status": s, "statusText": t, "statusChanged": c.created} for s, t in c.history
            ]
            corr = c.request["correspondence"]
            answer = {
                "correspondenceId": c.id,
                "recipient": c.recipient,
                "resourceId": corr["resourceId"],
                "sender": corr["sender"],
                "sendersReference": corr["sendersReference"],
                "created": c.created,
                "status": c.status,
                "statusText": c.history[-1][1],
                "statusChanged": c.created,
                "statusHistory": history,
                "notifications": [],
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise invalid(where + unknown[0], f"unknown field {unknown[0]!r}")


def _need_texts(
    n: dict[str, Any], channel: str, prefix: str, email: int, sms: int, both: int
) -> None:
    def name(x: str) -> str:
        return prefix + x[0].upper() + x[1:] if prefix else x

    has_email = bool(n.get(name("emailSubject"))) and bool(n.get(name("emailBody")))
    has_sms = bool(n.get(name("smsBody")))
    what = "Reminder " if prefix else ""
    if channel == "Email" and not has_email:
        raise problem(
            400,
            email,
            f"{what}Email body and subject must be provided when sending email notifications",
        )
    if channel == "Sms" and not has_sms:
        raise problem(400, sms, f"{what}SMS body must be provided when sending SMS notifications")
    if channel in ("EmailPreferred", "SmsPreferred", "EmailAndSms") and not (has_email and has_sms):
        raise problem(
            400,
            both,
            f"{what}Email body, subject and SMS body must be provided when sending preferred "
            "notifications",
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle holds the body back
        # until the client's delayed ACK (40 ms a request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests say what went wrong

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        server: AltinnServer = self.server.contract  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with server.lock:
            server.requests.append((method, url.path))
        try:
            if method == "POST" and url.path == "/token":
                time.sleep(server.delay)
                answer = server.token(self.headers, body)
            elif method == "GET" and url.path == "/authentication/api/v1/exchange/maskinporten":
                time.sleep(server.delay)
                answer = server.exchange(self.headers)
            elif url.path.startswith("/correspondence/api/v1/correspondence"):
                dropped = server.correspondence(
                    method, url.path, url.query, self.headers, body, self
                )
                if dropped is None:
                    return
                answer = dropped
            else:
                raise problem(404, 0, f"no such endpoint: {method} {url.path}")
        except Refused as e:
            kind = "application/json" if "error" in e.body else "application/problem+json"
            answer = (e.status, {"Content-Type": kind, **e.headers}, json.dumps(e.body).encode())
        status, headers, data = answer
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client is gone (a test killed it)
