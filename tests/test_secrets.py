"""Secrets: what is found, what is left alone, and that scrubbing is safe to repeat.

Every fake secret is built by concatenation so that no secret scanner run over this
repository sees a verbatim token.
"""

from __future__ import annotations

import base64
import copy
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.core.secrets import (
    REDACTED,
    SECRET_KINDS,
    LineScrubber,
    SecretFinding,
    find_secrets,
    is_secret_name,
    scrub_argv,
    scrub_data,
    scrub_env,
    scrub_text,
)

AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SESSION_KEY_ID = "ASIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "0123456789abcdefghij" + "ABCDEFGHIJ012345"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_" + "abcdefghijklmnopqrstuvwxyz0123456789"
GITLAB = "glpat-" + "abcdefghij" + "0123456789"
SLACK = "xoxb-" + "000000000000-0000000000000-" + "FAKEfakeFAKEfake"
SLACK_HOOK_PATH = "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
GOOGLE = "AIza" + "SyFAKE" + "0123456789abcdefghijklmnopqrs"
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + "CJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA"
NPM = "npm_" + "abcdefghijklmnopqrstuvwxyz" + "0123456789"
HF = "hf_" + "abcdefghijklmnopq" + "rstuvwxyzABCDEFGH"
AZURE_KEY = "FAKE" + "a1b2c3d4" * 10 + "AB=="
JWT = ("eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." + "eyJ" + "zdWIiOiJmYWtlIn0"
       + "." + "c2lnbmF0dXJlLWZha2U")
PEM = ("-----BEGIN " + "RSA PRIVATE KEY-----\n"
       "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
       "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n"
       "-----END " + "RSA PRIVATE KEY-----")
BASIC = base64.b64encode(b"etl-user:" + b"fake-pass-123").decode()


# --- shapes that must be found ---------------------------------------------------------

POSITIVES: list[tuple[str, str, str, str]] = [
    # (id, text, expected scrubbed text, kind)
    ("aws-key-id", f"using {AWS_KEY_ID} now", f"using {REDACTED} now", "aws-access-key"),
    ("aws-session-key-id", f"key={AWS_SESSION_KEY_ID}", f"key={REDACTED}", "aws-access-key"),
    ("aws-secret", f"aws_secret_access_key = {AWS_SECRET}", f"aws_secret_access_key = {REDACTED}",
     "aws-secret-key"),
    ("aws-secret-env", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"AWS_SECRET_ACCESS_KEY={REDACTED}",
     "aws-secret-key"),
    ("github", f"token {GITHUB} used", f"token {REDACTED} used", "github-token"),
    ("github-pat", f"push with {GITHUB_PAT}", f"push with {REDACTED}", "github-token"),
    ("github-x-access", f"https://x-access-token:{'ghs_' + 'a' * 36}@github.com/o/r.git",
     f"https://x-access-token:{REDACTED}@github.com/o/r.git", "github-token"),
    ("gitlab", f"GL {GITLAB}", f"GL {REDACTED}", "gitlab-token"),
    ("slack", f"slack {SLACK}", f"slack {REDACTED}", "slack-token"),
    ("slack-webhook", f"POST https://hooks.slack.com/services/{SLACK_HOOK_PATH} ok",
     f"POST https://hooks.slack.com/services/{REDACTED} ok", "slack-webhook"),
    ("google-api-key", f"maps?key={GOOGLE}&z=3", f"maps?key={REDACTED}&z=3", "google-api-key"),
    ("pypi", f"upload {PYPI}", f"upload {REDACTED}", "pypi-token"),
    ("npm", f"{NPM}", REDACTED, "npm-token"),
    ("huggingface", f"hub {HF}.", f"hub {REDACTED}.", "huggingface-token"),
    ("azure", f"DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={AZURE_KEY};"
     "EndpointSuffix=core.windows.net",
     f"DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={REDACTED};"
     "EndpointSuffix=core.windows.net", "azure-storage-key"),
    ("pem", f"key:\n{PEM}\nafter", f"key:\n{REDACTED}\nafter", "private-key"),
    ("pem-truncated", "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
     REDACTED, "private-key"),
    ("bearer-header", "Authorization: Bearer abc.DEF-123", f"Authorization: Bearer {REDACTED}",
     "bearer-token"),
    ("bearer-header-lower", "authorization: bearer short", f"authorization: bearer {REDACTED}",
     "bearer-token"),
    ("bearer-bare", "curl -H 'X: Bearer AbCdEf0123456789xyz'", f"curl -H 'X: Bearer {REDACTED}'",
     "bearer-token"),
    ("bearer-jwt", f"Authorization: Bearer {JWT}", f"Authorization: Bearer {REDACTED}",
     "jwt"),
    ("basic-header", f"Authorization: Basic {BASIC}", f"Authorization: Basic {REDACTED}",
     "basic-auth-header"),
    ("basic-bare", f"sent Basic {BASIC} upstream", f"sent Basic {REDACTED} upstream",
     "basic-auth-header"),
    ("other-scheme", "Proxy-Authorization: Digest username=a, response=b",
     f"Proxy-Authorization: Digest {REDACTED}", "authorization-header"),
    ("authorization-json", '{"Authorization": "token abc123"}',
     f'{{"Authorization": "token {REDACTED}"}}', "authorization-header"),
    ("url-https", "https://alice:s3cret@example.org/a?b=c",
     f"https://alice:{REDACTED}@example.org/a?b=c", "url-credentials"),
    ("url-postgres", "postgres://etl:hunter2@db:5432/lake", f"postgres://etl:{REDACTED}@db:5432/lake",
     "url-credentials"),
    ("url-s3", f"s3://{AWS_KEY_ID}:{'abc' * 3}@bucket/key",
     f"s3://{REDACTED}:{REDACTED}@bucket/key", "aws-access-key"),
    ("url-redis-no-user", "redis://:p4ss@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0",
     "url-credentials"),
    ("url-at-in-password", "ftp://u:p@ss@host/x", f"ftp://u:{REDACTED}@host/x", "url-credentials"),
    ("jwt", f"id_token_hint {JWT} end", f"id_token_hint {REDACTED} end", "jwt"),
    ("signed-url-aws", "https://b.s3.amazonaws.com/k?X-Amz-Expires=60&X-Amz-Signature=ab12cd&x=1",
     f"https://b.s3.amazonaws.com/k?X-Amz-Expires=60&X-Amz-Signature={REDACTED}&x=1",
     "signed-url"),
    ("signed-url-azure", "https://a.blob.core.windows.net/c/f?sv=2020&sig=AbC%2Bd%3D",
     f"https://a.blob.core.windows.net/c/f?sv=2020&sig={REDACTED}", "signed-url"),
    ("kv-equals", "password=hunter2 next", f"password={REDACTED} next", "secret-named-key"),
    ("kv-colon", "db_password: hunter2", f"db_password: {REDACTED}", "secret-named-key"),
    ("kv-json", '{"password": "hunter 2", "user": "bob"}',
     f'{{"password": "{REDACTED}", "user": "bob"}}', "secret-named-key"),
    ("kv-json-number", '{"pin_password": 1234}', f'{{"pin_password": {REDACTED}}}',
     "secret-named-key"),
    ("kv-repr", "{'api_key': 'k-123'}", f"{{'api_key': '{REDACTED}'}}", "secret-named-key"),
    ("kv-escaped-json", r'msg={\"token\": \"t0k\"}', rf'msg={{\"token\": \"{REDACTED}\"}}',
     "secret-named-key"),
    ("kv-query", "https://api.example.org/v1?access_token=abc123&page=2",
     f"https://api.example.org/v1?access_token={REDACTED}&page=2", "secret-named-key"),
    ("kv-camel", "clientSecret=xyz", f"clientSecret={REDACTED}", "secret-named-key"),
    ("kv-env-style", "PGPASSWORD=pw psql", f"PGPASSWORD={REDACTED} psql", "secret-named-key"),
    ("kv-pwd-segment", "MYSQL_PWD=pw", f"MYSQL_PWD={REDACTED}", "secret-named-key"),
    ("kv-auth", "auth=user:pw", f"auth={REDACTED}", "secret-named-key"),
    ("kv-unterminated", 'password="abc def\nnext', f'password="{REDACTED}\nnext',
     "secret-named-key"),
    ("kv-yaml", "db:\n  password: hunter2\n", f"db:\n  password: {REDACTED}\n",
     "secret-named-key"),
    ("dashed-space", "run --password hunter2 -v", f"run --password {REDACTED} -v",
     "secret-named-key"),
    ("dashed-equals", "run --db-token=abc -v", f"run --db-token={REDACTED} -v",
     "secret-named-key"),
    ("dashed-quoted", "run --client-secret 'a b'", f"run --client-secret '{REDACTED}'",
     "secret-named-key"),
]


@pytest.mark.parametrize(("text", "expected", "kind"), [p[1:] for p in POSITIVES],
                         ids=[p[0] for p in POSITIVES])
def test_scrub_text_finds(text: str, expected: str, kind: str) -> None:
    clean, findings = scrub_text(text)
    assert clean == expected
    assert findings and findings[0].kind == kind
    assert {f.kind for f in findings} <= set(SECRET_KINDS)
    assert scrub_text(clean) == (clean, [])


@pytest.mark.parametrize(("text", "expected", "kind"), [p[1:] for p in POSITIVES],
                         ids=[p[0] for p in POSITIVES])
def test_long_text_takes_the_same_path(text: str, expected: str, kind: str) -> None:
    """Past the prefilter's size every detector runs: the result must not change."""
    pad = "x " * 5000 + "\n"
    clean, findings = scrub_text(pad + text + "\n" + pad)
    assert clean == pad + expected + "\n" + pad
    assert findings[0].kind == kind


# --- what must be left alone -----------------------------------------------------------

NEGATIVES = [
    "sha256:" + "0123456789abcdef" * 4,
    "run 01ARZ3NDEKTSV4RRFFQ69G5FAV finished",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "https://example.org/a?b=c&d=e#frag",
    "s3://bucket/data/raw/file.tif",
    "postgres://etl@db:5432/lake",
    "https://example.org:8443/path/x@y",
    "mail alice@example.org or bob@host",
    "crs EPSG:4326 and epsg=3857",
    "/home/etl/data/raw/family/2024-01-01/x.csv",
    "C:\\data\\raw\\x.csv",
    "12:30:45 INFO done in 3.2s",
    "token_count=5 tokenizer=bpe max_tokens=100 tokens: 17",
    "password_policy: strict password_file=/run/secrets/db passwords_rotated=3",
    "private_key_id=abc123 access_key_id: xyz",
    "secret_name=db-creds secrets: [db]",
    "oauth: enabled author=bob keyring=x sort_key=date",
    '{"use_token": false, "token": null, "password": true, "auth": none}',
    "password: ${DB_PASSWORD} token=$GITHUB_TOKEN secret={{ vault_secret }}",
    'api_key="${{ secrets.API_KEY }}" password="%(password)s" token=<token> pwd=***',
    "PWD=/home/etl OLDPWD=/tmp SSH_AUTH_SOCK=/tmp/ssh-x/agent.1",
    "GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp/sa.json",
    "Using Bearer authentication; see Basic usage.",
    "Authorization: denied for user bob",
    "--no-password file.txt --password -",
    "-p 5432 -u etl",
    f"[REDACTED] password={REDACTED} https://u:{REDACTED}@h Authorization: Bearer {REDACTED}",
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 20,
    "AKIAIOSFODNN7EXAMPL",  # one character short
    "XAKIAIOSFODNN7EXAMPLEX",
    "eyJhbGciOiJIUzI1NiJ9 alone",
    "ghp_tooShort",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_scrub_text_leaves_alone(text: str) -> None:
    assert scrub_text(text) == (text, [])


# --- locations -------------------------------------------------------------------------

def test_text_locations_are_lines() -> None:
    text = "ok\npassword=a\nok\n" + f"{AWS_KEY_ID}\n"
    _clean, findings = scrub_text(text)
    assert [f.to_dict() for f in findings] == [
        {"location": "line 2", "kind": "secret-named-key"},
        {"location": "line 4", "kind": "aws-access-key"},
    ]
    _clean, findings = scrub_text(text, "logs/run.log")
    assert [f.location for f in findings] == ["logs/run.log line 2", "logs/run.log line 4"]


def test_one_line_keeps_the_location_given() -> None:
    """A log writer passes one line and its own "line N"; a trailing newline is one line."""
    _clean, findings = scrub_text("password=a\n", "logs/stdout.log line 7")
    assert findings == [SecretFinding("logs/stdout.log line 7", "secret-named-key")]


def test_finding_round_trip_and_never_holds_the_value() -> None:
    finding = SecretFinding("/params/db_url", "url-credentials")
    assert SecretFinding.from_dict(finding.to_dict()) == finding
    assert json.loads(json.dumps(finding.to_dict())) == finding.to_dict()
    _clean, findings = scrub_data({"db_url": "postgres://a:hunter2@h/x"}, "/params")
    assert findings == [finding]
    assert "hunter2" not in json.dumps([f.to_dict() for f in findings])


# --- the key-name rule -----------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "password", "Password", "DB_PASSWORD", "db-password", "db.password", "passwords", "passwd",
    "passphrase", "secret", "client_secret", "clientSecret", "token", "auth_token", "githubToken",
    "access_token", "refresh-token", "credential", "credentials", "aws_credentials", "api_key",
    "apikey", "apiKey", "X-Api-Key", "access_key", "secret_key", "private_key", "privateKey",
    "aws_secret_access_key", "auth", "basic_auth", "authorization", "db_pwd", "PGPASSWORD",
    "ssh_key", "stripe_key", "db_pass", "smtp-pass", "STRIPE_KEY",  # issue 12: *_key, *_pass
])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "token_count", "tokenizer", "max_tokens", "tokens", "password_policy", "password_file",
    "passwordless", "secrets", "secret_name", "oauth", "author", "authority", "use_auth_header",
    "private_key_id", "access_key_id", "key", "sort_key", "partition_key", "public_key",
    "gpg_key", "pass", "bypass", "pwd", "PWD",
    "OLDPWD", "SSH_AUTH_SOCK", "PYTHONHASHSEED", "GOOGLE_APPLICATION_CREDENTIALS", "", "_",
])
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


# --- structured data -------------------------------------------------------------------

def test_scrub_data_redacts_secret_named_keys_whatever_they_hold() -> None:
    params = {
        "db_password": "hunter2", "pin_password": 1234, "token": 1.5,
        "credentials": {"user": "etl", "password": "x", "enabled": True, "port": 5432},
        "auth": ["etl", "pw"], "api_key": "", "use_token": False, "token_count": 12,
        "password_policy": "strict", "tokens": [1, 2], "secret": None, "client_secret": "${X}",
        "sub": {"access_token": "abc"},
    }
    original = copy.deepcopy(params)
    clean, findings = scrub_data(params, "/params")
    assert params == original  # the input is not touched
    assert clean == {
        "db_password": REDACTED, "pin_password": REDACTED, "token": REDACTED,
        "credentials": {"user": REDACTED, "password": REDACTED, "enabled": True,
                        "port": REDACTED},
        "auth": [REDACTED, REDACTED], "api_key": "", "use_token": False, "token_count": 12,
        "password_policy": "strict", "tokens": [1, 2], "secret": None, "client_secret": "${X}",
        "sub": {"access_token": REDACTED},
    }
    assert sorted(f.location for f in findings) == sorted([
        "/params/db_password", "/params/pin_password", "/params/token",
        "/params/credentials/user", "/params/credentials/password", "/params/credentials/port",
        "/params/auth/0", "/params/auth/1", "/params/sub/access_token",
    ])
    assert {f.kind for f in findings} == {"secret-named-key"}


def test_scrub_data_scans_every_string() -> None:
    clean, findings = scrub_data({"sources": [f"s3://{AWS_KEY_ID}:x@b/k", "ok"],
                                  "note": "line one\nuse password=abc"})
    assert clean == {"sources": [f"s3://{REDACTED}:{REDACTED}@b/k", "ok"],
                     "note": f"line one\nuse password={REDACTED}"}
    assert [f.to_dict() for f in findings] == [
        {"location": "/sources/0", "kind": "aws-access-key"},
        {"location": "/sources/0", "kind": "url-credentials"},
        {"location": "/note line 2", "kind": "secret-named-key"},
    ]


def test_scrub_data_pointers_escape_and_never_repeat_a_secret() -> None:
    data = {"a/b": {"c~d": "password=x"}, "https://u:pw1@h": 1, "https://u:pw2@h": 2}
    clean, findings = scrub_data(data)
    scrubbed_key = f"https://u:{REDACTED}@h"
    assert clean == {"a/b": {"c~d": f"password={REDACTED}"}, scrubbed_key: 1,
                     f"{scrubbed_key} (2)": 2}
    assert [f.location for f in findings] == [
        "/a~1b/c~0d", f"/https:~1~1u:{REDACTED}@h", f"/https:~1~1u:{REDACTED}@h (2)"]
    assert not any("pw1" in f.location or "pw2" in f.location for f in findings)


def test_specific_kinds_from_names_and_shapes() -> None:
    service_account = {
        "type": "service_account", "project_id": "lake", "private_key_id": "0a1b2c",
        "private_key": PEM + "\n", "client_email": "etl@lake.iam.gserviceaccount.com",
    }
    clean, findings = scrub_data({"sa": service_account, "aws": {
        "aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET}})
    assert clean["sa"]["private_key"] == REDACTED
    assert clean["sa"]["private_key_id"] == "0a1b2c"
    assert clean["sa"]["client_email"] == service_account["client_email"]
    assert clean["aws"] == {"aws_access_key_id": REDACTED, "aws_secret_access_key": REDACTED}
    assert [f.to_dict() for f in findings] == [
        {"location": "/sa/private_key", "kind": "gcp-service-account-key"},
        {"location": "/aws/aws_access_key_id", "kind": "aws-access-key"},
        {"location": "/aws/aws_secret_access_key", "kind": "aws-secret-key"},
    ]


def test_scrub_data_keeps_types_it_does_not_know_and_tuples() -> None:
    marker = object()
    clean, findings = scrub_data({"t": ("password=x", 1), "o": marker, 3: "k"})
    assert clean == {"t": (f"password={REDACTED}", 1), "o": marker, 3: "k"}
    assert findings == [SecretFinding("/t/0", "secret-named-key")]


def test_argv_like_lists_in_data() -> None:
    """A pipeline-written receipt with ["--password", "x"] is caught by find_secrets."""
    receipt = {"command": ["etl", "--password", "hunter2", "--out", "x"],
               "args": ["--pin-password", 1234, "--use-token", True]}
    assert find_secrets(receipt) == [SecretFinding("/command/2", "secret-named-key"),
                                     SecretFinding("/args/1", "secret-named-key")]


def test_find_secrets_detects_without_rewriting() -> None:
    receipt = {"params": {"db_url": "postgres://a:b@h/x"}, "log": f"x\n{GITHUB}"}
    before = copy.deepcopy(receipt)
    assert [f.to_dict() for f in find_secrets(receipt)] == [
        {"location": "/params/db_url", "kind": "url-credentials"},
        {"location": "/log line 2", "kind": "github-token"},
    ]
    assert receipt == before
    assert find_secrets(f"a\nb {AWS_KEY_ID}") == [SecretFinding("line 2", "aws-access-key")]
    assert find_secrets(scrub_data(receipt)[0]) == []


# --- argv and environment --------------------------------------------------------------

@pytest.mark.parametrize(("argv", "expected", "where"), [
    (["etl", "--password", "hunter2"], ["etl", "--password", REDACTED], ["/2"]),
    (["etl", "--db-token", "abc", "--v"], ["etl", "--db-token", REDACTED, "--v"], ["/2"]),
    (["etl", "--token=abc"], ["etl", f"--token={REDACTED}"], ["/1"]),
    (["etl", "-p", "secret123"], ["etl", "-p", "secret123"], []),
    (["etl", "--password", "-"], ["etl", "--password", "-"], []),
    (["etl", "--password", "--verbose"], ["etl", "--password", "--verbose"], []),
    (["etl", "--password"], ["etl", "--password"], []),
    (["etl", "--no-password", "in.csv"], ["etl", "--no-password", "in.csv"], []),
    (["etl", "--password", REDACTED], ["etl", "--password", REDACTED], []),
    (["psql", "postgres://a:b@h/x"], ["psql", f"postgres://a:{REDACTED}@h/x"], ["/1"]),
    (["sh", "-c", "curl -u x --header 'Authorization: Bearer tok123'"],
     ["sh", "-c", f"curl -u x --header 'Authorization: Bearer {REDACTED}'"], ["/2"]),
])
def test_scrub_argv(argv: list[str], expected: list[str], where: list[str]) -> None:
    clean, findings = scrub_argv(argv)
    assert clean == expected
    assert [f.location for f in findings] == where
    assert scrub_argv(tuple(argv), "/command")[1] == [
        SecretFinding("/command" + w, f.kind) for w, f in zip(where, findings, strict=True)]


def test_scrub_env() -> None:
    env = {
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SESSION_TOKEN": "abc", "GITHUB_TOKEN": "x", "DB_PASSWORD": "pw", "MYSQL_PWD": "pw",
        "PGPASSWORD": "pw", "STRIPE_KEY": "k", "SMTP_PASS": "p", "APP_SECRET": "s",
        "DATABASE_URL": "postgres://etl:pw@db/lake", "EMPTY_TOKEN": "",
        "PWD": "/home/etl", "OLDPWD": "/tmp", "SSH_AUTH_SOCK": "/tmp/ssh/agent.1",
        "PYTHONHASHSEED": "0", "GPG_KEY": "A035C8C19219BA821ECEA86B64E628F8D684696D",
        "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA", "GOOGLE_APPLICATION_CREDENTIALS": "/etc/sa.json",
        "PATH": "/usr/bin:/bin", "HOME": "/home/etl", "TOKENIZERS_PARALLELISM": "false",
        "KFM_RUN_ID": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    }
    clean, findings = scrub_env(env)
    secret = {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "GITHUB_TOKEN",
              "DB_PASSWORD", "MYSQL_PWD", "PGPASSWORD", "STRIPE_KEY", "SMTP_PASS", "APP_SECRET"}
    assert list(clean) == list(env)
    for name, value in env.items():
        if name != "DATABASE_URL":
            assert clean[name] == (REDACTED if name in secret else value), name
    assert clean["DATABASE_URL"] == "postgres://etl:" + REDACTED + "@db/lake"
    kinds = {f.location: f.kind for f in findings}
    assert kinds["/AWS_SECRET_ACCESS_KEY"] == "aws-secret-key"
    assert kinds["/AWS_ACCESS_KEY_ID"] == "aws-access-key"  # by its value, not its name
    assert kinds["/DATABASE_URL"] == "url-credentials"
    assert set(kinds) == {f"/{n}" for n in secret} | {"/DATABASE_URL"}
    assert scrub_env(clean) == (clean, [])
    assert find_secrets(clean) == []  # what the gate sees in a receipt kfm-prov wrote


# --- a stream, line by line ----------------------------------------------------------

def _scrub_lines(text: str) -> tuple[str, list[SecretFinding]]:
    scrubber = LineScrubber()
    out, findings = [], []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        clean, found = scrubber.scrub(line, f"logs/stdout.log line {number}")
        out.append(clean)
        findings += found
    return "".join(out), findings


def test_line_scrubber_keeps_a_key_block_open_across_lines() -> None:
    body = PEM.splitlines()[1:-1]
    clean, findings = _scrub_lines(f"start\n{PEM}\nafter {AWS_KEY_ID}\nok\n")
    assert clean == (f"start\n{REDACTED}\n" + f"{REDACTED}\n" * len(body)
                     + f"{REDACTED}\nafter {REDACTED}\nok\n")
    assert not any(line in clean for line in body)
    assert findings == [SecretFinding("logs/stdout.log line 2", "private-key"),
                        SecretFinding(f"logs/stdout.log line {len(body) + 4}", "aws-access-key")]


def test_line_scrubber_closes_a_truncated_key_at_the_first_foreign_line() -> None:
    text = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBg\n2024-05-01 INFO go on\nok\n"
    assert _scrub_lines(text)[0] == f"{REDACTED}\n{REDACTED}\n2024-05-01 INFO go on\nok\n"
    one_line = "-----BEGIN " + "PRIVATE KEY-----abc-----END " + "PRIVATE KEY----- then\nMIIE\n"
    assert _scrub_lines(one_line)[0] == f"{REDACTED} then\nMIIE\n"


# --- performance: linear, whatever the input (completion only; timings live in benchmarks)

@pytest.mark.parametrize("text", [
    "a" * 100_000 + "@",
    "QUJD" * 100_000,
    "://" + "a" * 100_000 + ":" + "b" * 100_000,
    "password=" * 20_000,
    "--password " * 20_000,
    'password="' + '\\"' * 50_000,
    "Authorization: x " * 20_000,
    "eyJ" * 50_000 + "." + "eyJ" * 50_000,
    "-----BEGIN RSA PRIVATE KEY-----" * 5_000,
    "Bearer " * 20_000,
    "-" * 200_000,
    "a_" * 100_000 + "password",
    "http://u:" + "@" * 100_000,
    "api_key" * 30_000,
    "${" * 50_000 + "password=x",
])
def test_pathological_inputs_complete(text: str) -> None:
    clean, _findings = scrub_text(text)
    assert scrub_text(clean)[0] == clean


def test_large_log_completes() -> None:
    line = (f"2024-05-01T12:00:00Z INFO step=reproject src=data/raw/x.tif epsg=EPSG:4326 "
            f"sha256:{'ab' * 32} https://example.org/a?b=c token=abc {AWS_KEY_ID}\n")
    clean, findings = scrub_text(line * 20_000)
    assert len(findings) == 40_000
    assert AWS_KEY_ID not in clean
    assert findings[-1].location == "line 20000"


# --- properties ------------------------------------------------------------------------

# Filler never holds an upper-case letter or a digit; every planted secret does, so a
# planted secret found in the output can only be the one that was planted.
FILLER = st.text(alphabet=string.ascii_lowercase + " \n\t:=/@.-_\"'{},;&?#", max_size=40)
_UPPER_DIGITS = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


def _word(min_size: int = 10) -> st.SearchStrategy[str]:
    return (st.text(alphabet=_ALNUM, min_size=min_size, max_size=24)
            .filter(lambda w: any(c in _UPPER_DIGITS for c in w)))


# (strategy for the secret, how it is written in text)
PLANTED = st.one_of(
    _random(_UPPER_DIGITS, 16).map(lambda s: ("AKIA" + s, "AKIA" + s)),
    _random(_ALNUM, 36).map(lambda s: ("ghp_" + s, "ghp_" + s)),
    _random(_ALNUM, 20).map(lambda s: ("glpat-" + s, "glpat-" + s)),
    _word().map(lambda s: (s, f"postgres://etl:{s}@db.example.org/lake")),
    _word().map(lambda s: (s, f"password={s}")),
    _word().map(lambda s: (s, f'"api_key": "{s}"')),
    _word().map(lambda s: (s, f"--db-password {s}")),
    _word(16).map(lambda s: (s, f"Authorization: Bearer {s}")),
    _word(16).map(lambda s: ("eyJ" + s, f"eyJ{s}.eyJ{s}.{s}")),
    _word().map(lambda s: (s, f"-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----")),
)

FRAGMENTS = st.sampled_from([
    "password", "token", "=", ": ", "\"", "'", "\\\"", "://", "@", ":", "/", " ", "\n", "--",
    "Bearer ", "Basic ", "Authorization: ", "-----BEGIN PRIVATE KEY-----", "-----END ", "eyJ",
    "AKIA", "ghp_", "${", "}", "{{", REDACTED, "[", "]", "?sig=", "&", "api_key", "db_pwd",
    "AIza", "xoxb-", "hooks.slack.com/services/", "AccountKey=", "abcdefgh", "0123456789",
    "ABCDEFGHIJKLMNOP", "-", "_", ".", ",", "true", "null", "<x>", "***",
])
MIXED_TEXT = st.lists(st.one_of(FRAGMENTS, FILLER), max_size=30).map("".join)

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(text=MIXED_TEXT)
def test_scrub_text_is_idempotent(text: str) -> None:
    once, _ = scrub_text(text)
    assert scrub_text(once) == (once, [])
    assert find_secrets(once) == []


@PROPERTY_SETTINGS
@given(before=FILLER, planted=PLANTED, after=FILLER)
def test_planted_secret_never_survives(before: str, planted: tuple[str, str],
                                       after: str) -> None:
    secret, written = planted
    clean, findings = scrub_text(f"{before} {written} {after}")
    assert secret not in clean
    assert findings
    assert all(secret not in f.location for f in findings)


JSON_KEYS = st.text(alphabet=string.ascii_letters + "_", max_size=12)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        MIXED_TEXT, PLANTED.map(lambda p: p[1]))
JSON_DATA = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(JSON_KEYS, children, max_size=4)),
    max_leaves=20)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


@PROPERTY_SETTINGS
@given(data=JSON_DATA)
def test_scrub_data_keeps_shape_and_is_idempotent(data: Any) -> None:
    before = copy.deepcopy(data)
    once, findings = scrub_data(data, "/x")
    assert data == before
    assert _shape(once) == _shape(data)
    assert scrub_data(once, "/x") == (once, [])
    assert find_secrets(data, "/x") == findings
    assert all(f.location.startswith("/x") and f.kind in SECRET_KINDS for f in findings)
    json.dumps(once)  # still JSON


@PROPERTY_SETTINGS
@given(secret=_word(), name=st.sampled_from(["password", "db_token", "apiKey", "auth"]))
def test_planted_secret_in_data_never_survives(secret: str, name: str) -> None:
    clean, _ = scrub_data({"params": {name: secret, "n": [f"{name}={secret}"]}})
    assert secret not in json.dumps(clean)


@PROPERTY_SETTINGS
@given(text=MIXED_TEXT)
def test_line_scrubber_agrees_with_scrub_text_on_one_line(text: str) -> None:
    line = text.replace("\n", " ").replace("\r", " ")
    assert LineScrubber().scrub(line, "x") == scrub_text(line, "x")
