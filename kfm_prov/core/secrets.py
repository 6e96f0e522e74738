"""Find secrets in what kfm-prov writes, and scrub them before they reach the disk.

SPEC §5.7: no receipt, parameter or log may hold a secret. Two uses share one detector, so
that what the gate refuses is exactly what a scrub would have removed:

* kfm-prov's own writers call ``scrub_*``: every secret becomes ``[REDACTED]`` and the
  findings (where, which kind, never the value) go into the run's ``secrets`` gate;
* ``record`` and the gate call :func:`find_secrets` on receipts a pipeline wrote itself,
  and refuse; they never rewrite someone else's file.

Detection is by shape (a token format such as ``AKIA…`` or ``ghp_…``, a PEM private key,
a password inside a URL, an ``Authorization`` header) and by name (the value of a
secret-named key, see :func:`is_secret_name`). There is deliberately no "high entropy"
rule: digests, ULIDs, commit hashes and base64 payloads are what a data lake is made of,
and the gate fails closed, so every false positive would block a promotion.

Why not detect-secrets' plugin catalogue (evaluated for issue 12, ``python -m
benchmarks.bench_secrets``): without its two entropy plugins, which flag every digest,
ULID and commit of a lake, its 1.5.0 catalogue catches the legacy OpenAI and the Stripe
key shapes but none of the others this detector had missed (OpenAI project and Anthropic
keys, a token as a URL's user, ``curl -u``, ``*_pass``/``*_key`` names, ``NAME value``,
PEM bodies on prefixed log lines), and scanning a 10,000-output run's evidence took ~30
times as long (170 s against 5.5 s for 70,000 lines, load average 18 on 2 cores; an index
rebuild of 2,000 runs: 481 s against 12 s). Its shapes are mirrored here instead, each
anchored on a literal prefix; new providers go in ``_DETECTORS``.

Each kind of secret has its own compiled pattern, each starting with a literal so that
``re`` can skip ahead with its fast prefix search; one alternation of all of them cannot
(measured: ~0.5 s against ~0.1 s for 10 MB). The name-based rule runs on an ASCII
lower-cased copy of the text, which keeps offsets identical to the original.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

SECRET_KINDS: tuple[str, ...] = (
    "aws-access-key",  # AKIA/ASIA + 16
    "aws-secret-key",  # the value of a key named like aws_secret_access_key
    "gcp-service-account-key",  # private_key of a {"type": "service_account"} object
    "google-api-key",  # AIza + 35
    "azure-storage-key",  # AccountKey=... in a connection string
    "github-token",  # ghp_ gho_ ghu_ ghs_ ghr_ github_pat_
    "gitlab-token",  # glpat- and the other gl*- prefixes
    "slack-token",  # xoxb- xoxp- xoxa- xoxs- xoxo- xoxr- xoxe- xapp-
    "slack-webhook",  # hooks.slack.com/services/...
    "openai-api-key",  # sk-<48>, sk-proj-, sk-svcacct-, sk-admin-
    "anthropic-api-key",  # sk-ant-api03-...
    "stripe-key",  # sk_live_ rk_live_ sk_test_ rk_test_ whsec_
    "provider-token",  # SendGrid SG., DigitalOcean dop_v1_, Shopify shpat_, Databricks, Groq
    "pypi-token",  # pypi-AgEIcHlwaS5vcmc...
    "npm-token",  # npm_ + 36
    "huggingface-token",  # hf_ + 34
    "private-key",  # -----BEGIN ... PRIVATE KEY----- through END
    "bearer-token",  # Authorization: Bearer x, or a bare "Bearer <token>"
    "basic-auth-header",  # Authorization: Basic x, or a bare "Basic <base64 of user:pass>"
    "authorization-header",  # Authorization: <other scheme> x
    "url-credentials",  # scheme://user:PASSWORD@host, scheme://TOKEN@host
    "cli-credentials",  # curl -u user:PASSWORD, --user, --proxy-user
    "signed-url",  # sig= / X-Amz-Signature= / X-Goog-Signature= in a query string
    "jwt",  # eyJ….eyJ….sig
    "secret-named-key",  # the value of a secret-named key (is_secret_name)
)


@dataclass(frozen=True)
class SecretFinding:
    """One secret found: where and which kind. It never carries the value."""

    location: str  # a JSON pointer such as "/params/db_url", or "line 12" in text
    kind: str  # one of SECRET_KINDS

    def to_dict(self) -> dict[str, str]:
        return {"location": self.location, "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecretFinding:
        return cls(location=str(data["location"]), kind=str(data["kind"]))


# --- the key-name rule -----------------------------------------------------------------

# The last segment of a name ending in one of these makes it secret-named ("db_password",
# "githubToken", "client_secret"); "tokens" and "secrets" are plurals that usually hold
# counts or names ("max_tokens", "secrets: [db]"), so they are left out on purpose.
_SECRET_SUFFIXES = (
    "password", "passwords", "passwd", "passphrase", "secret", "token", "credential",
    "credentials", "apikey", "accesskey", "secretkey", "privatekey", "authorization",
)
# "<word>_key" and "<word>_pass" are secret ("stripe_key", "smtp_pass", "ssh_key") unless
# the word says the key is public or a data key ("sort_key", "partition_key", "GPG_KEY", a
# release-signing fingerprint in the official python images); a plain "key" is not.
_KEY_QUALIFIERS = frozenset({"api", "access", "secret", "private"})
_EXTRA_LAST = frozenset({"key", "pass"})
_NOT_SECRET_QUALIFIERS = frozenset({
    "public", "pub", "gpg", "pgp", "sort", "sorting", "order", "partition", "primary",
    "foreign", "join", "group", "cache", "dedup", "index", "lookup", "hash", "row", "unique",
    "composite", "natural", "surrogate", "business", "cluster", "shard", "bucket", "merge",
    "match", "record", "object", "s3", "gcs", "blob", "file", "table", "column", "field",
    "attribute", "attr", "idempotency", "map", "dict", "id", "geo", "no"})
# Names that match the rule but, by convention, hold a path rather than a secret.
_NOT_SECRET_NAMES = frozenset({"google_application_credentials"})

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _segments(name: str) -> list[str]:
    return [s for s in _NON_ALNUM.split(name.lower()) if s]


def is_secret_name(name: str) -> bool:
    """Whether a key, option or variable with this name holds a secret.

    The name is lower-cased and split into segments on anything not a letter or digit
    (``DB-Password`` → ``db``, ``password``). It is secret-named when its *last* segment
    ends with password(s), passwd, passphrase, secret, token, credential(s), apikey,
    accesskey, secretkey, privatekey or authorization (so ``githubToken``); or its last two
    segments are ``api|access|secret|private`` + ``key``; or its last segment is exactly
    ``auth``, or exactly ``pwd`` after another segment (``db_pwd``; a bare ``PWD`` is the
    working directory). Matching the end, not a substring, keeps ``token_count``,
    ``tokenizer``, ``max_tokens``, ``password_policy``, ``password_file``, ``oauth`` and
    ``private_key_id`` out. ``GOOGLE_APPLICATION_CREDENTIALS`` (a path) is excepted.
    """
    segments = _segments(name)
    if not segments or "_".join(segments) in _NOT_SECRET_NAMES:
        return False
    last = segments[-1]
    if last.endswith(_SECRET_SUFFIXES) or last == "auth":
        return True
    if len(segments) < 2:
        return False
    if last == "key" and segments[-2] in _KEY_QUALIFIERS:
        return True
    return last == "pwd" or (last in _EXTRA_LAST
                             and segments[-2] not in _NOT_SECRET_QUALIFIERS)


def _is_secret_env_name(name: str) -> bool:
    """Environment variables follow the same rule as parameters and text (issue 12 §6)."""
    return is_secret_name(name)


def _kind_for_name(name: str) -> str:
    squashed = "".join(_segments(name))
    return "aws-secret-key" if squashed.endswith("secretaccesskey") else "secret-named-key"


# --- values that are not secrets even under a secret name ------------------------------

# References to a secret kept elsewhere ($DB_PASSWORD, ${DB_PASSWORD}, ${{ secrets.X }},
# {{ vault_password }}, %(password)s, <password>) and masks (****).
_PLACEHOLDER = re.compile(
    r"\$[A-Za-z_][A-Za-z0-9_]*|\$\{[^{}\n]*\}|\$?\{\{[^\n]*\}\}|%\([A-Za-z_]\w*\)s"
    r"|<[^<>\n]*>|[*•]+")
# Unquoted words in text that are a boolean or a null, not a value ("use_token: false").
_NON_VALUES = frozenset({"true", "false", "null", "none", "nil", "yes", "no", "on", "off",
                         "undefined"})


def _is_placeholder(value: str) -> bool:
    stripped = value.strip()
    return not stripped or stripped == REDACTED or _PLACEHOLDER.fullmatch(stripped) is not None


# --- detectors -------------------------------------------------------------------------

_Hit = tuple[int, int, str]  # start, end (of what to replace) and kind
_Extract = Callable[[re.Match[str], str], _Hit | None]


@dataclass(frozen=True)
class _Detector:
    kind: str
    anchors: tuple[str, ...]  # lower-case literals, one of which is in every match
    pattern: re.Pattern[str]
    lower: bool  # runs on the ASCII lower-cased copy
    extract: _Extract
    resume: str | int = 0  # the group after which to search on when extract says no


def _scrubbed(value: str) -> bool:
    """Already scrubbed: a value that holds the marker is left alone.

    Checking for the marker anywhere in the value, not only the whole value, is what keeps
    scrubbing idempotent. Once a secret is gone, a neighbouring value (``?sig=`` before a
    PEM block) can run on into the marker where it used to stop at a space.
    """
    return not value or REDACTED in value


def _span(kind: str) -> _Extract:
    """The secret is group ``s`` when there is one, else the whole match."""

    def extract(match: re.Match[str], text: str) -> _Hit | None:
        group = "s" if "s" in match.re.groupindex else 0
        start, end = match.span(group)
        if _scrubbed(text[start:end]):
            return None
        return start, end, kind

    return extract


def _token(kind: str, anchors: tuple[str, ...], regex: str, *, lower: bool = False) -> _Detector:
    return _Detector(kind, anchors, re.compile(regex), lower, _span(kind))


# A value after "key=", "key: ", "--key ": quoted (JSON, Python repr, shell, escaped JSON
# inside a log line), an unterminated quote (to the end of the line, rather than leak the
# rest), a ${...}/{{...}} reference (kept, even unclosed, as another secret may be what
# was scrubbed out of it; bounded, since a rejected value is skipped whole), or a bare
# word up to a delimiter.
_VALUE = r"""(?:
    "(?P<dq>(?:[^"\\\n]|\\.)*)"
  | '(?P<sq>[^'\n]*)'
  | \\"(?P<esc>(?:[^"\\\n]|\\[^"\n])*)\\"
  | \\?["'](?P<open>[^\n]*)
  | (?P<ref>\$?\{\{[^}\n]{0,256}(?:\}\})?|\$\{[^}\n]{0,256}\}?)
  | (?P<bare>[^\s"'`,;&<>(){}\[\]\\]+)
)"""
_VALUE_GROUPS = ("dq", "sq", "esc", "open", "ref", "bare")
_VALUE_AT = re.compile(_VALUE, re.VERBOSE)

# The secret terms of is_secret_name, as they end a key in text. Each is its own pattern
# with a literal start; the lookbehinds give "auth" and "pwd" their whole-segment rule and
# "key" its qualifier. "authorization" is left to the header detector, which knows where
# a header value ends.
_KEY_AFTER = "|".join(f"(?<={q}[_.\\-]key)|(?<={q}key)" for q in sorted(_KEY_QUALIFIERS))
_TERMS = (
    r"pass(?:words?|wd|phrase|(?<=[a-z0-9][_.\-]pass))",
    r"secret",
    r"token",
    r"credentials?",
    r"auth(?<![a-z0-9\]]auth)",
    r"pwd(?<=[a-z0-9][_.\-]pwd)",
    rf"key(?:{_KEY_AFTER}|(?<=[a-z0-9][_.\-]key))",
)
_TERM_ANCHORS = ("pass", "secret", "token", "credential", "auth", "pwd", "key")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _key_start(text: str, end: int) -> int:
    start = end
    floor = max(0, end - 256)
    while start > floor and text[start - 1] in _KEY_CHARS:
        start -= 1
    return start


def _named_value(dashed: bool) -> _Extract:
    def extract(match: re.Match[str], text: str) -> _Hit | None:
        start = _key_start(text, match.end("term"))
        if text.endswith("://", 0, start):  # https://x-access-token:...@: the URL rule's
            return None
        name = text[start:match.end("term")]
        if not is_secret_name(name):  # the exceptions (GOOGLE_APPLICATION_CREDENTIALS)
            return None
        if dashed and _segments(name)[:1] == ["no"]:  # --no-password takes no value
            return None
        # The value is read only now that the key holds: a rejected key costs nothing
        # however long the text after it ("://token:://token:…" stays linear).
        found = _VALUE_AT.match(text, match.end())
        if found is None:
            return None
        group = next(g for g in _VALUE_GROUPS if found.group(g) is not None)
        start, end = found.span(group)
        value = text[start:end]
        if group == "ref" or _scrubbed(value) or _is_placeholder(value):
            return None
        if group == "bare" and value.lower() in _NON_VALUES:
            return None
        return start, end, _kind_for_name(name)

    return extract


def _kv(term: str, anchor: str) -> _Detector:
    # key=value, key: value, "key": "value", key => value, key := value. The separator is
    # atomic: "token:=x" is never re-read as "token:" with the value "=x".
    regex = rf"""(?P<term>{term})\\?["']?(?>[ \t]*(?:=>|[:=]+)[ \t]*)"""
    return _Detector("secret-named-key", (anchor,), re.compile(regex, re.VERBOSE), True,
                     _named_value(dashed=False), resume="term")


def _dashed() -> _Detector:
    # --password hunter2, -db-token abc: an option at the start of a word, then a space.
    terms = "|".join(_TERMS)
    regex = rf"""-(?<![^\s"'(\[,]-)-?[a-z0-9_.\-]*?(?P<term>{terms})[ \t]+(?!-)"""
    return _Detector("secret-named-key", _TERM_ANCHORS, re.compile(regex, re.VERBOSE), True,
                     _named_value(dashed=True), resume="term")


_BARE = re.compile(r"""[^\s"'`,;&<>(){}\[\]\\]+""")
_NAME_START = frozenset(" \t\r\n\"'(,[{\\")  # a backslash: "\\n" escapes


def _spaced_value(match: re.Match[str], text: str) -> _Hit | None:
    """``db_password hunter2``: an identifier-like secret name, a space, then a value.

    Only names of two segments or more (``DB_PASSWORD``, ``api-token``): a lone
    ``password`` before a space is prose ("password reset"). A lower-case word after it
    is prose too ("db_password changed"); a value with a digit, a capital or a symbol is
    taken for a secret.
    """
    start = _key_start(text, match.end("term"))
    if start > 0 and text[start - 1] not in _NAME_START:
        return None
    name = text[start:match.end("term")]
    if name.startswith("-") or len(_segments(name)) < 2 or not is_secret_name(name):
        return None
    found = _BARE.match(text, match.end())
    if found is None:
        return None
    value = found.group()
    if (value.lower() in _NON_VALUES or _is_placeholder(value) or _scrubbed(value)
            or (value.isalpha() and value.islower())):
        return None
    return found.start(), found.end(), _kind_for_name(name)


def _spaced() -> _Detector:
    terms = "|".join(_TERMS)
    regex = rf"""(?P<term>{terms})[ \t]+(?![\-=:\s])"""
    return _Detector("secret-named-key", _TERM_ANCHORS, re.compile(regex, re.VERBOSE), True,
                     _spaced_value, resume="term")


def _url_user(match: re.Match[str], text: str) -> _Hit | None:
    """``https://TOKEN@host``: a user part that looks random is a token, not a login."""
    start, end = match.span("s")
    value = text[start:end]
    if _scrubbed(value) or not _credential_like(value):
        return None
    return start, end, "url-credentials"


def _cli_user(match: re.Match[str], text: str) -> _Hit | None:
    """``curl -u user:PASSWORD``; ``docker -u 1000:1000`` (uid:gid) is not a password."""
    start, end = match.span("s")
    value = text[start:end]
    if value.isdigit() or _scrubbed(value) or _is_placeholder(value):
        return None
    return start, end, "cli-credentials"


def _credential_like(token: str) -> bool:
    """A bare ``Bearer`` word is a token only if it looks random, not like prose."""
    return len(token) >= 16 and (any(c.isdigit() for c in token)
                                 or (any(c.isupper() for c in token[1:])
                                     and any(c.islower() for c in token)))


def _bearer(match: re.Match[str], text: str) -> _Hit | None:
    start, end = match.span("s")
    if not _credential_like(text[start:end]):
        return None
    return start, end, "bearer-token"


def _is_basic_credential(token: str) -> bool:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def _basic(match: re.Match[str], text: str) -> _Hit | None:
    start, end = match.span("s")
    if not _is_basic_credential(text[start:end]):
        return None
    return start, end, "basic-auth-header"


_AUTH_SCHEMES = {
    "bearer": "bearer-token", "basic": "basic-auth-header", "digest": "authorization-header",
    "token": "authorization-header", "negotiate": "authorization-header",
    "ntlm": "authorization-header", "dpop": "authorization-header",
    "aws4-hmac-sha256": "authorization-header", "apikey": "authorization-header",
    "api-key": "authorization-header", "key": "authorization-header",
    "sso-key": "authorization-header", "hmac": "authorization-header",
    "oauth": "authorization-header", "jwt": "authorization-header",
}
_AUTH_WORD = r"[a-z0-9._~+/=\-]"


def _authorization(match: re.Match[str], text: str) -> _Hit | None:
    """``Authorization: <scheme> <credentials>``: everything after a known scheme goes.

    A lone word is read in a lookahead, so that when it is not a credential the search
    goes on right after the header's name ("Authorization: Authorization: Bearer x").
    """
    if match.group("scheme") is None:  # "Authorization: <credential>" or prose ("denied")
        start, end = match.span("word")
        return (start, end, "authorization-header") if _credential_like(text[start:end]) else None
    if match.group("rest") is None:
        return None
    start = match.start("rest")
    value = text[start:match.end("rest")].rstrip()
    if _scrubbed(value):  # skipped whole: a header's value runs to the end of its line
        return None
    return start, start + len(value), _AUTH_SCHEMES[match.group("scheme")]


# Word boundaries below treat "]" before and "[" after a token as part of a word, the
# brackets of the marker: a token glued to a secret that was scrubbed is judged as it was
# before, which keeps a second scrub from finding what the first one did not. Order
# matters only for the kind reported when two detectors find the same span.
_DETECTORS: tuple[_Detector, ...] = (
    # A whole PEM block goes, armor headers included; a block cut short (no END line)
    # goes up to its last whole base64 or header line, not to the end of the log.
    _Detector(
        "private-key", ("-----begin ",),
        re.compile(r"""-----BEGIN\ [A-Z0-9 ]{0,40}PRIVATE\ KEY(?:\ BLOCK)?-----
            (?:(?:[^-]|-(?!----))*-----END\ [A-Z0-9 ]{0,40}PRIVATE\ KEY(?:\ BLOCK)?-----
              |(?:(?:\r?\n|(?:\\r)?\\n)(?:[A-Za-z0-9+/=]+|[A-Za-z][A-Za-z-]*:[^\r\n\\]*
                  |[^\r\n\\]*?[ \t|\]>][A-Za-z0-9+/]{16,}+={0,2}[ \t]*)
                  (?=\r?\n|(?:\\r)?\\n|["']|\Z))*)""", re.VERBOSE),
        False, _span("private-key")),
    _token("aws-access-key", ("akia", "asia"),
           r"(?:AKIA|ASIA)(?<![A-Za-z0-9\]]....)[A-Z0-9]{16}(?![A-Za-z0-9\[])"),
    _token("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
           r"gh[pousr]_(?<![A-Za-z0-9\]]gh._)[A-Za-z0-9]{30,}"),
    _token("github-token", ("github_pat_",),
           r"github_pat_(?<![A-Za-z0-9\]]github_pat_)[A-Za-z0-9_]{22,}"),
    _token("gitlab-token", ("glpat-", "glptt-", "gldt-", "glrt-", "glcbt-", "glimt-", "glft-",
                            "glsoat-", "gloas-", "glagent-"),
           r"gl(?<![A-Za-z0-9\]]gl)(?:pat|ptt|dt|rt|cbt|imt|ft|soat|oas|agent)-[A-Za-z0-9_\-]{20,}"),
    _token("slack-token", ("xox",), r"xox[abposre]-(?<![A-Za-z0-9\]]xox.-)[A-Za-z0-9\-]{10,}"),
    _token("slack-token", ("xapp-",), r"xapp-(?<![A-Za-z0-9\]]xapp-)\d-[A-Za-z0-9\-]{10,}"),
    _token("slack-webhook", ("hooks.slack.com/",),
           r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_\-/]+)"),
    _token("google-api-key", ("aiza",),
           r"AIza(?<![A-Za-z0-9_\-\]]AIza)[A-Za-z0-9_\-]{35}(?![A-Za-z0-9_\-\[])"),
    # Not glued to a word before it, except an escaped newline or tab ("\\nsk-…" in a
    # command or log holding JSON or a Python repr).
    _token("anthropic-api-key", ("sk-ant-",),
           r"sk-ant-(?:(?<=\\[nrt]sk-ant-)|(?<![A-Za-z0-9\]]sk-ant-))"
           r"[a-z]{2,8}\d\d-[A-Za-z0-9_\-]{20,}"),
    _token("openai-api-key", ("sk-",),
           r"sk-(?:(?<=\\[nrt]sk-)|(?<![A-Za-z0-9_\]]sk-))"
           r"(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"
           r"|(?!ant-)[A-Za-z0-9]{32,}(?![A-Za-z0-9\[]))"),
    _token("stripe-key", ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"),
           r"(?:[sr]k_(?:live|test)|whsec)_"
           r"(?:(?<=\\[nrt].k_...._)|(?<=\\[nrt]whsec_)|(?<![A-Za-z0-9\]].k_...._)"
           r"(?<![A-Za-z0-9\]]whsec_))[A-Za-z0-9]{16,}"),
    _token("provider-token", ("sg.",),
           r"SG\.(?<![A-Za-z0-9\]]SG\.)[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),
    _token("provider-token", ("dop_v1_", "doo_v1_", "dor_v1_"),
           r"do[opr]_v1_(?<![A-Za-z0-9\]]do._v1_)[a-f0-9]{64}"),
    _token("provider-token", ("shpat_", "shpss_", "shpca_", "shppa_"),
           r"shp(?:at|ss|ca|pa)_(?<![A-Za-z0-9\]]shp.._)[a-fA-F0-9]{32}"),
    _token("provider-token", ("dapi",),
           r"dapi(?<![A-Za-z0-9\]]dapi)[a-f0-9]{32}(?![A-Za-z0-9\[])"),
    _token("provider-token", ("gsk_",),
           r"gsk_(?<![A-Za-z0-9\]]gsk_)[A-Za-z0-9]{48,}"),
    _token("pypi-token", ("pypi-",), r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    _token("npm-token", ("npm_",), r"npm_(?<![A-Za-z0-9\]]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9\[])"),
    _token("huggingface-token", ("hf_",),
           r"hf_(?<![A-Za-z0-9\]]hf_)[A-Za-z]{34}(?![A-Za-z0-9\[])"),
    _token("azure-storage-key", ("accountkey=",), r"AccountKey=(?P<s>[A-Za-z0-9+/]{20,}={0,2})"),
    _token("jwt", ("eyj",),
           r"eyJ(?<![A-Za-z0-9_\-\]]eyJ)[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    # user:PASSWORD@ after "://"; the password may hold "@" (the last one before the host
    # wins), never "/" or a space, so "https://host:8080/a@b" is not a credential.
    _token("url-credentials", ("://",),
           r"://[^\s:/?#@\"'<>\[\]\\]*:(?P<s>[^\s/?#\"'<>\\]+)@"),
    _Detector("url-credentials", ("://",),
              re.compile(r"://(?P<s>[A-Za-z0-9_\-.~%+]{16,})@(?=[A-Za-z0-9\[])"),
              False, _url_user),
    _Detector("cli-credentials", ("-u", "--user", "--proxy-user"),
              re.compile(r"""(?<![^\s"'])(?:-u|-U|--user|--proxy-user)(?:[ \t]+|=)["']?"""
                         r"""[^\s:"'@/]+:(?P<s>[^\s"']+)"""),
              False, _cli_user),
    _token("signed-url", ("sig=",), r"sig=(?<=[?&]sig=)(?P<s>[^&\s#\"'<>]+)", lower=True),
    _token("signed-url", ("signature=",),
           r"signature=(?:(?<=[?&]x-amz-signature=)|(?<=[?&]x-goog-signature=))"
           r"(?P<s>[^&\s#\"'<>]+)", lower=True),
    _Detector("authorization-header", ("authorization",), re.compile(
        r"""authorization(?<![a-z0-9\]]authorization)\\?["']?(?>[ \t]*[:=]+[ \t]*)\\?["']?
            (?:(?P<scheme>""" + "|".join(re.escape(k) for k in _AUTH_SCHEMES) + rf""")
                (?!{_AUTH_WORD})(?:[ \t]+["']?(?P<rest>[^\r\n"'\\]+))?
              |(?=(?P<word>{_AUTH_WORD}+)))""", re.VERBOSE), True, _authorization),
    _Detector("bearer-token", ("bearer",),
              re.compile(r"bearer(?<![a-z0-9\]]bearer)[ \t]+(?P<s>[a-z0-9\-._~+/]+=*)"),
              True, _bearer),
    _Detector("basic-auth-header", ("basic",),
              re.compile(r"basic(?<![a-z0-9\]]basic)[ \t]+(?P<s>[a-z0-9+/]{4,}={0,2})"
                         r"(?![a-z0-9+/=\[])"),
              True, _basic),
    *(_kv(term, anchor) for term, anchor in zip(_TERMS, _TERM_ANCHORS, strict=True)),
    _dashed(),
    _spaced(),
)

# One search over a short text tells which detectors can match at all: most log lines and
# parameter values hold no anchor and then cost a single regex call, the others run only
# the detectors whose anchor they hold. The anchors form a trie so that each position
# tries one branch, not forty.
def _anchor_trie(anchors: Sequence[str]) -> tuple[str, dict[str, tuple[int, ...]]]:
    """A regex matching the shortest anchors, and which detectors each of them enables."""
    terminal = {a: min((b for b in anchors if a.startswith(b)), key=len) for a in anchors}
    tree: dict[str, Any] = {}
    for word in set(terminal.values()):
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        parts = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not parts:
            return ""
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    enables: dict[str, set[int]] = {}
    for rank, detector in enumerate(_DETECTORS):
        for anchor in detector.anchors:
            enables.setdefault(terminal[anchor], set()).add(rank)
    return emit(tree), {word: tuple(sorted(ranks)) for word, ranks in enables.items()}


_PREFILTER_SOURCE, _ENABLES = _anchor_trie([a for d in _DETECTORS for a in d.anchors])
_PREFILTER = re.compile(_PREFILTER_SOURCE)
_SHORT = 8192  # longer texts run every detector: that is cheaper than collecting anchors
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _detectors_for(low: str) -> list[int]:
    if len(low) > _SHORT:
        return list(range(len(_DETECTORS)))
    ranks: set[int] = set()
    pos = 0
    while (match := _PREFILTER.search(low, pos)) is not None:
        ranks.update(_ENABLES[match.group()])
        pos = match.start() + 1  # anchors may overlap ("akiauth")
    return sorted(ranks)


def _scan(text: str) -> list[_Hit]:
    """Every secret in ``text`` as non-overlapping spans, in order.

    Overlapping finds (a JWT after ``Bearer``, a PEM inside ``"private_key": "…"``) are
    merged into one span, reported once with the kind of the earliest (then first-listed)
    detector.
    """
    if not text:
        return []
    # ASCII-only lower-casing keeps every offset equal to the original's.
    low = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
    hits: list[tuple[int, int, int, str]] = []
    for rank in _detectors_for(low):
        detector = _DETECTORS[rank]
        source = low if detector.lower else text
        search = detector.pattern.search
        pos = 0
        while (match := search(source, pos)) is not None:
            hit = detector.extract(match, text)
            if hit is None:  # a rejected value may hide another key ("--no-password x")
                pos = match.end(detector.resume)
                continue
            hits.append((hit[0], rank, hit[1], hit[2]))
            pos = max(match.end(), hit[1])
    if not hits:
        return []
    hits.sort(key=lambda h: (h[0], h[1], -h[2]))
    merged: list[_Hit] = []
    for start, _rank, end, kind in hits:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, kind))
    return merged


def _apply(text: str, hits: Sequence[_Hit]) -> str:
    parts: list[str] = []
    pos = 0
    for start, end, _kind in hits:
        parts += (text[pos:start], REDACTED)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _text_findings(text: str, hits: Sequence[_Hit], location: str) -> list[SecretFinding]:
    """``location`` as given for one line; ``"<location> line N"`` when text has several."""
    if location and "\n" not in text.rstrip("\r\n"):
        return [SecretFinding(location, kind) for _s, _e, kind in hits]
    findings = []
    line, pos = 1, 0
    for start, _end, kind in hits:
        line += text.count("\n", pos, start)
        pos = start
        where = f"{location} line {line}" if location else f"line {line}"
        findings.append(SecretFinding(where, kind))
    return findings


# --- public API ------------------------------------------------------------------------

def scrub_text(text: str, location: str = "") -> tuple[str, list[SecretFinding]]:
    """Replace each secret inside free text with ``[REDACTED]``; return it and the findings.

    Only the secret goes: ``https://user:[REDACTED]@host/db``, ``password=[REDACTED]``,
    ``Authorization: Bearer [REDACTED]``; a PEM private key goes whole. Findings are located
    at ``location`` (a single line, as a log writer passes ``"logs/run.log line 12"``), or
    at ``"<location> line N"`` / ``"line N"`` within a multi-line text. Scrubbing twice
    changes nothing. Time is linear in the length of the text.
    """
    hits = _scan(text)
    if not hits:
        return text, []
    return _apply(text, hits), _text_findings(text, hits, location)


def _pointer(path: str, key: object) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


_OPTION = re.compile(r"--?([A-Za-z0-9][A-Za-z0-9_.\-]*)")
_USER_OPTIONS = frozenset({"-u", "-U", "--user", "--proxy-user"})


def _option_kind(item: object) -> str | None:
    """The kind of the value that follows ``--password`` and the like, or None."""
    if not isinstance(item, str) or (match := _OPTION.fullmatch(item)) is None:
        return None
    name = match.group(1)
    if not is_secret_name(name) or _segments(name)[:1] == ["no"]:
        return None
    return _kind_for_name(name)


def _takes_value(item: object) -> bool:
    """An argv element after a secret option is its value unless it is another option.

    A value that starts with "-" is taken for an option (argparse refuses it as a value
    too; pass ``--password=-x`` instead), and ``-`` means "read it from stdin".
    """
    if isinstance(item, str):
        return not item.startswith("-") and not _is_placeholder(item)
    return isinstance(item, int | float) and not isinstance(item, bool)


class _Scrubber:
    """One walk over JSON-like data, collecting findings as it copies."""

    def __init__(self) -> None:
        self.findings: list[SecretFinding] = []

    def value(self, value: Any, pointer: str, secret_kind: str | None) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if secret_kind is not None:
                if _is_placeholder(value):
                    return value
                self.findings.append(SecretFinding(pointer, secret_kind))
                return REDACTED
            clean, found = scrub_text(value, pointer)
            self.findings += found
            return clean
        if isinstance(value, int | float):
            if secret_kind is not None:
                self.findings.append(SecretFinding(pointer, secret_kind))
                return REDACTED
            return value
        if isinstance(value, Mapping):
            return self.mapping(value, pointer, secret_kind)
        if isinstance(value, list | tuple):
            items = self.sequence(value, pointer, secret_kind)
            return tuple(items) if isinstance(value, tuple) else items
        return value

    def mapping(self, value: Mapping[Any, Any], pointer: str,
                secret_kind: str | None) -> dict[Any, Any]:
        service_account = value.get("type") == "service_account"
        out: dict[Any, Any] = {}
        for key, item in value.items():
            clean_key, key_hits = key, []
            if isinstance(key, str):
                key_hits = _scan(key)
                if key_hits:
                    clean_key = _apply(key, key_hits)
                    n = 2
                    while clean_key in out or clean_key in value:
                        clean_key = f"{_apply(key, key_hits)} ({n})"
                        n += 1
            child = _pointer(pointer, clean_key)
            self.findings += [SecretFinding(child, kind) for _s, _e, kind in key_hits]
            kind = secret_kind
            if isinstance(clean_key, str) and is_secret_name(clean_key):
                kind = _kind_for_name(clean_key)
                if service_account and "".join(_segments(clean_key)) == "privatekey":
                    kind = "gcp-service-account-key"
            out[clean_key] = self.value(item, child, kind)
        return out

    def sequence(self, value: Sequence[Any], pointer: str, secret_kind: str | None) -> list[Any]:
        out: list[Any] = []
        option_kind: str | None = None  # set right after "--password" in an argv-like list
        for index, item in enumerate(value):
            child = _pointer(pointer, index)
            previous = value[index - 1] if index else None
            if (secret_kind is None and isinstance(previous, str) and previous in _USER_OPTIONS
                    and isinstance(item, str)):  # curl -u user:PASSWORD
                hits = _scan(f"{previous} {item}")
                if any(kind == "cli-credentials" for _s, _e, kind in hits):
                    self.findings.append(SecretFinding(child, "cli-credentials"))
                    out.append(item.split(":", 1)[0] + ":" + REDACTED)
                    option_kind = None
                    continue
            if option_kind is not None and secret_kind is None and _takes_value(item):
                self.findings.append(SecretFinding(child, option_kind))
                out.append(REDACTED)
                option_kind = None
                continue
            out.append(self.value(item, child, secret_kind))
            option_kind = _option_kind(item)
        return out


def scrub_data(value: Any, path: str = "") -> tuple[Any, list[SecretFinding]]:
    """A deep copy of JSON-like data with every secret replaced by ``[REDACTED]``.

    The input is left untouched. Under a secret-named key (:func:`is_secret_name`) every
    string and number is redacted, however deep, while ``None``, booleans, empty strings
    and references such as ``${DB_PASSWORD}`` stay (``"use_token": false`` holds no
    secret); dicts and lists keep their shape. Every other string is scanned with
    :func:`scrub_text`; a list that reads like an argv (``["--password", "x"]``) loses the
    value after a secret-named option. A key that itself holds a secret is scrubbed too,
    with `` (2)`` appended should two keys become equal. Tuples stay tuples; other types
    pass through unscanned. Findings are JSON pointers (RFC 6901) under ``path``, built
    from scrubbed keys so that a location never repeats a secret.
    """
    scrubber = _Scrubber()
    clean = scrubber.value(value, path, None)
    return clean, scrubber.findings


def scrub_argv(argv: Sequence[str], path: str = "") -> tuple[list[str], list[SecretFinding]]:
    """``argv`` with secrets scrubbed; findings are ``<path>/<index>``.

    Handles ``--password x``, ``--db-token=x``, ``PGPASSWORD=x``, URLs with a password and
    every token shape. ``-p x`` is not taken for a password: too many tools use ``-p`` for
    a port, a path or a profile.
    """
    clean, findings = scrub_data(list(argv), path)
    return clean, findings


def scrub_env(env: Mapping[str, str], path: str = "") -> tuple[dict[str, str], list[SecretFinding]]:
    """Environment variables with secrets scrubbed; findings are ``<path>/<NAME>``.

    A variable is secret by name under :func:`is_secret_name` (``GITHUB_TOKEN``,
    ``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``, ``MYSQL_PWD``) or, for the environment only,
    when its name ends in ``_KEY`` or ``_PASS`` (``STRIPE_KEY``, ``SMTP_PASS``) unless the
    segment before is public/pub/gpg/pgp (``GPG_KEY`` is a fingerprint). ``PWD``,
    ``OLDPWD``, ``SSH_AUTH_SOCK``, ``PYTHONHASHSEED``, ``AWS_ACCESS_KEY_ID`` and
    ``GOOGLE_APPLICATION_CREDENTIALS`` are not secret by name; every value is still scanned
    for token shapes, so an ``AKIA…`` key id is caught by its value.
    """
    out: dict[str, str] = {}
    findings: list[SecretFinding] = []
    for name, value in env.items():
        where = _pointer(path, name)
        if _is_secret_env_name(name) and not _is_placeholder(value):
            out[name] = REDACTED
            findings.append(SecretFinding(where, _kind_for_name(name)))
        else:
            out[name], found = scrub_text(value, where)
            findings += found
    return out, findings


_PEM_OPEN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_CLOSE = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_PREFIXED = re.compile(r"(?P<prefix>[^\r\n]*?[ \t|\]>])(?:[A-Za-z0-9+/]{16,}+={0,2}"
                           r"|[A-Za-z0-9+/]{2,}+={1,2})[ \t]*(?P<end>\r?\n)?")
_PEM_LINE = re.compile(r"[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z][A-Za-z-]*:[^\r\n]*)?[ \t]*(\r?\n)?")


class LineScrubber:
    """Scrubs a text that arrives one line at a time, such as a command's output.

    :func:`scrub_text` on each line alone redacts a PEM key's BEGIN line and lets its
    base64 body through. This keeps the block open across lines until its END line, or
    until a line that cannot belong to a key. Other secrets fit on one line. Use one
    instance per stream.
    """

    def __init__(self) -> None:
        self._in_key = False

    def scrub(self, line: str, location: str = "") -> tuple[str, list[SecretFinding]]:
        """The line scrubbed, and its findings (the key is reported once, at BEGIN)."""
        if self._in_key:
            close = _PEM_CLOSE.search(line)
            if close is not None:
                self._in_key = False
                rest, found = self.scrub(line[close.end():], location)
                return REDACTED + rest, found
            body = _PEM_LINE.fullmatch(line)
            if body is not None:
                return REDACTED + (body.group(1) or ""), []
            body = _PEM_PREFIXED.fullmatch(line)  # "2026-01-01 INFO MIIEow…" in a log
            if body is not None:
                return body.group("prefix") + REDACTED + (body.group("end") or ""), []
            self._in_key = False
        clean, found = scrub_text(line, location)
        last_open = max((m.end() for m in _PEM_OPEN.finditer(line)), default=None)
        if last_open is not None and _PEM_CLOSE.search(line, last_open) is None:
            self._in_key = True
        return clean, found


def find_secrets(value: Any, path: str = "") -> list[SecretFinding]:
    """The secrets :func:`scrub_data` would remove, without rewriting anything.

    For the gate and for ``record`` of receipts a pipeline wrote itself: kfm-prov reports
    and refuses, it does not edit someone else's file. A string is scanned as text
    (findings ``line N``); data gives JSON pointers.
    """
    return scrub_data(value, path)[1]


# --- the fast path for files the gate re-reads ------------------------------------------
#
# Every detector's match holds one of its anchors (``_Detector.anchors``), and every
# secret name holds one of the name rule's terms, which are anchors too. So a string in
# whose lower-cased text ``_PREFILTER`` finds nothing yields no finding, and makes none
# of its neighbours one (only a secret-named key, an option such as ``--password`` or
# ``-u`` before a list item, does that, and each holds an anchor). The functions below
# run that one compiled search over a whole file, at C speed, and judge only the strings
# it stops in, each exactly as ``scrub_data`` or ``LineScrubber`` would; anything they
# cannot judge that way goes to the precise path. ``tests/test_secrets_fast.py`` checks
# that they agree with it.

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_COLON_AFTER = re.compile(r"[ \t\r\n]*:")


def _inert_key(key: str) -> bool:
    """A mapping key that is no finding and gives its value no secret kind."""
    return not _scan(key) and not is_secret_name(key)


def _inert_value(value: str) -> bool:
    """A string value that is no finding and makes the next list item none either."""
    return not _scan(value) and value not in _USER_OPTIONS and _option_kind(value) is None


_INERT_CACHE: dict[tuple[bool, str], bool] = {}  # "pass", paths, ids: the same strings recur


def _inert(text: str, is_key: bool) -> bool:
    known = _INERT_CACHE.get((is_key, text))
    if known is None:
        known = _inert_key(text) if is_key else _inert_value(text)
        if len(_INERT_CACHE) < 16384 and len(text) <= 256:  # at most a few MiB
            _INERT_CACHE[(is_key, text)] = known
    return known


def json_may_hold_secrets(text: str) -> bool:
    """Whether :func:`find_secrets` could find anything in the JSON document ``text``.

    ``False`` is a proof: no key and no string of the document yields a finding, whether
    the document is scanned whole, in part (with values left out, as the gate's
    manifest view does), or as an environment (:func:`scrub_env`). ``True`` means
    "scan it": some string holds an anchor that this function does not judge harmless.
    ``text`` must be the valid JSON that the data was parsed from.

    One compiled search over the lower-cased text finds the anchors; each string it
    stops in is judged like ``scrub_data`` judges it (``_scan``, the secret-name rule,
    the options that make the next list item a secret). A document that is not ASCII
    or holds ``\\u`` or ``\\/`` escapes is judged string by string, each decoded first,
    so no escape can hide an anchor from the search.
    """
    if not text.isascii() or "\\u" in text or "\\/" in text:
        return _tokens_may_hold(text)
    low = text.lower()
    match = _PREFILTER.search(low)
    while match is not None:
        # A JSON string holds no raw newline, so every line starts outside of one: the
        # string the anchor is in is found by reading its line alone.
        line = text.rfind("\n", 0, match.start()) + 1
        for token in _JSON_STRING.finditer(text, line):
            start, end = token.span()
            if end > match.start():
                break
        else:
            return True
        if not start < match.start() < match.end() < end:
            return True  # not inside a string: not JSON this function judges
        value = text[start + 1:end - 1] if "\\" not in token.group() else _decode(token.group())
        if value is None or not _inert(value, _COLON_AFTER.match(text, end) is not None):
            return True
        match = _PREFILTER.search(low, end)
    return False


def _decode(token: str) -> str | None:
    import json

    try:
        value = json.loads(token)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _tokens_may_hold(text: str) -> bool:
    """``json_may_hold_secrets`` one decoded string at a time (escapes, non-ASCII text).

    Each string is lower-cased with ``str.lower``: a key is judged by ``is_secret_name``,
    which lower-cases that way (the Kelvin sign becomes ``k``), and every ASCII anchor of
    the ASCII-only lower-casing ``_scan`` uses survives it.
    """
    for found in _JSON_STRING.finditer(text):
        token = found.group()
        value = token[1:-1] if "\\" not in token else _decode(token)
        if value is None:
            return True
        if _PREFILTER.search(value.lower()) is None:
            continue
        if not _inert(value, _COLON_AFTER.match(text, found.end()) is not None):
            return True
    return False


def find_secrets_in_lines(text: str) -> list[SecretFinding]:
    """What one :class:`LineScrubber` finds in each line of ``text``, located ``line N``.

    ``text`` is a log as read in text mode (newlines already ``\\n``); its lines are
    what iterating over the file gives. Only the lines in which ``_PREFILTER`` finds an
    anchor are scanned, each with :func:`scrub_text` as ``LineScrubber`` would; a log
    that opens a PEM block is scrubbed line by line, since a key spans lines.
    """
    low = text.lower()  # finds every anchor the ASCII-only lower-casing of ``_scan`` does
    if len(low) != len(text):  # and keeps offsets unless a character grew ("İ")
        low = text.translate(_ASCII_LOWER)
    if "-----begin " in low:
        scrubber = LineScrubber()
        return [found for number, line in enumerate(_lines(text), start=1)
                for found in scrubber.scrub(line, f"line {number}")[1]]
    findings: list[SecretFinding] = []
    number, counted = 1, 0
    match = _PREFILTER.search(low)
    while match is not None:
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        end = len(text) if end < 0 else end + 1
        number += text.count("\n", counted, start)
        counted = start
        findings += scrub_text(text[start:end], f"line {number}")[1]
        match = _PREFILTER.search(low, end)
    return findings


def _lines(text: str) -> list[str]:
    """The lines of ``text`` split on ``\\n`` only, each with its newline."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
