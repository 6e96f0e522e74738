"""Secrets (issue 12 §6): today's token shapes, one rule for every place, and PROV that
publishes no parameter value the detector cannot vouch for.

Every shape below was missed before this issue; each is caught by the detector, scrubbed
from what ``kfm-prov run`` writes, refused by ``kfm-prov record``, and never reaches a
published bundle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kfm_prov.core.secrets import LineScrubber, find_secrets, scrub_argv, scrub_data, scrub_text
from kfm_prov.lake import Lake
from tests.conftest import CODE, CODE_ARGS, add_raw, snapshot, write

PY = sys.executable
# Fake values in each provider's shape, built so that no scanner flags this file itself.
OPENAI = "sk-" + "a1B2c3D4e5F6g7H8i9J0" + "T3BlbkFJ" + "k1L2m3N4o5P6q7R8s9T0"
OPENAI_PROJ = "sk-proj-" + "Pr0j_k3y-" * 6
ANTHROPIC = "sk-ant-api03-" + "An7hr0pic_k3y-" * 6 + "AA"
STRIPE = "sk_" + "live_" + "51HgT3stStr1peKey0000abc"
STRIPE_RESTRICTED = "rk_" + "live_" + "51HgT3stStr1peKey0000abc"
URL_TOKEN = "https://" + "g1tHubT0kenN0Colon42" + "@github.com/org/pipes.git"
PEM_BODY = "MIIEowIBAAKCAQEAx1y2z3" * 3
PREFIXED_PEM = ("2026-01-01T00:00:00Z INFO -----BEGIN RSA " + "PRIVATE KEY-----\n"
                f"2026-01-01T00:00:00Z INFO {PEM_BODY}\n"
                f"2026-01-01T00:00:00Z INFO {PEM_BODY}\n"
                "2026-01-01T00:00:00Z INFO -----END RSA " + "PRIVATE KEY-----\n")

MISSED_IN_TEXT = [
    ("openai", f"OPENAI={OPENAI}", OPENAI),
    ("openai-project", f"using key {OPENAI_PROJ}", OPENAI_PROJ),
    ("anthropic", f"client(api={ANTHROPIC})", ANTHROPIC),
    ("stripe", f"charge with {STRIPE}", STRIPE),
    ("stripe-restricted", f"{STRIPE_RESTRICTED} ok", STRIPE_RESTRICTED),
    ("url-user-token", f"git clone {URL_TOKEN}", "g1tHubT0kenN0Colon42"),
    ("curl-u", "curl -u etl:hunter2 https://api.example.org/x", "hunter2"),
    ("curl-user", "curl --user=etl:S3cr3t! https://api.example.org/x", "S3cr3t!"),
    ("pass-name", "smtp_pass=hunter2", "hunter2"),
    ("key-name", "stripe_key: abc123", "abc123"),
    ("space-named", "DB_PASSWORD hunter2", "hunter2"),
    ("space-token", "using api_token Zx81kq in job", "Zx81kq"),
]
STILL_CLEAN = ["sort_key=date", "password reset required", "db_password changed",
               "docker run -u 1000:1000 img", "python -u clean.py", "task-manager-2",
               "https://git@github.com/org/r.git", "partition_key: year"]


@pytest.mark.parametrize(("name", "text", "secret"), MISSED_IN_TEXT,
                         ids=[m[0] for m in MISSED_IN_TEXT])
def test_each_missed_shape_is_caught_in_text(name: str, text: str, secret: str) -> None:
    clean, findings = scrub_text(text)
    assert findings, text
    assert secret not in clean


@pytest.mark.parametrize("text", STILL_CLEAN)
def test_look_alikes_stay(text: str) -> None:
    assert scrub_text(text) == (text, [])


def test_pem_body_on_prefixed_log_lines() -> None:
    clean, findings = scrub_text(PREFIXED_PEM)
    assert PEM_BODY not in clean and findings
    cut_short = PREFIXED_PEM.rsplit("\n", 2)[0] + "\n2026-01-01T00:00:00Z INFO done\n"
    clean, _ = scrub_text(cut_short)
    assert PEM_BODY not in clean and clean.endswith("INFO done\n")
    scrubber = LineScrubber()  # as `kfm-prov run` sees a command's output, line by line
    lines = [scrubber.scrub(line)[0] for line in cut_short.splitlines(keepends=True)]
    assert not any(PEM_BODY in line for line in lines)
    assert lines[1].startswith("2026-01-01T00:00:00Z INFO ")  # the prefix stays
    assert lines[-1].endswith("INFO done\n")


def test_params_env_and_argv_share_the_rules() -> None:
    params = {"db_pass": "hunter2", "stripe_key": "abc", "sort_key": "date", "ssh_key": "k",
              "note": f"see {OPENAI}", "url": URL_TOKEN}
    clean, findings = scrub_data(params, "/params")
    assert clean["sort_key"] == "date"
    assert {f.location for f in findings} == {"/params/db_pass", "/params/stripe_key",
                                              "/params/ssh_key", "/params/note", "/params/url"}
    env = {"DB_PASS": "hunter2", "STRIPE_KEY": "abc", "SORT_KEY": "date"}
    assert {f.location for f in find_secrets(env)} == {"/DB_PASS", "/STRIPE_KEY"}
    argv, found = scrub_argv(["curl", "-u", "etl:hunter2", "https://h/x"])
    assert argv == ["curl", "-u", "etl:[REDACTED]", "https://h/x"]
    assert [f.kind for f in found] == ["cli-credentials"]


def test_kfm_prov_run_writes_none_of_them(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "id\n1\n")
    printed = "\n".join(text for _, text, _ in MISSED_IN_TEXT) + "\n" + PREFIXED_PEM
    script = (f"import os, sys; sys.stdout.write({printed!r}); sys.stderr.write({printed!r});"
              "open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'o.csv'), 'w').write('x')")
    run_cli("run", "-f", "glo", "-p", "pipelines/glo?password=hunter2", *CODE_ARGS, "-i", src,
            "-o", "o.csv:product", "--param", "db_pass=hunter2", "--param",
            f"token_note={ANTHROPIC}", "--param", "year=2020",
            "--", PY, "-c", script, "-u", "etl:hunter2")
    run = lake.runs()[-1]
    run_dir = lake.root / run.run_dir
    everything = "\n".join(p.read_text(errors="replace") for p in run_dir.rglob("*")
                           if p.is_file())
    for _, _, secret in MISSED_IN_TEXT:
        assert secret not in everything, secret
    assert PEM_BODY not in everything and "hunter2" not in everything
    record = json.loads((run_dir / "run_record.json").read_text())
    assert "[REDACTED]" in record["pipeline_id"]
    report = json.loads((run_dir / "validation_report.json").read_text())
    where = {f["location"] for g in report["gates"] if g["name"] == "secrets"
             for f in g["details"]["redacted"]}
    assert {"/pipeline_id", "/params/db_pass", "/params/token_note"} <= where
    assert any(w.startswith("logs/stdout.log") for w in where)
    assert any(w.startswith("/command/") for w in where)


@pytest.mark.parametrize(("field", "value"), [
    ("params", {"db_pass": "hunter2"}),
    ("params", {"note": f"curl -u etl:{'hunter2'} https://h"}),
    ("params", {"openai": OPENAI}),
    ("pipeline_id", "pipelines/glo?password=hunter2"),
    ("command", ["curl", "-u", "etl:hunter2", "https://h"]),
])
def test_record_refuses_receipts_holding_them(run_cli, lake: Lake, field: str,
                                              value: object) -> None:
    from tests.cli.test_run import seed_run

    run_dir = seed_run(lake)
    name = "run_manifest.json" if field == "params" else "run_record.json"
    data = json.loads((run_dir / name).read_text())
    data[field] = value
    write(run_dir / name, json.dumps(data))
    before = snapshot(lake.root)
    result = run_cli("record", run_dir.relative_to(lake.root).as_posix(), expect=1)
    assert "refused to record" in result.stderr and "written in the receipt" in result.stderr
    assert "hunter2" not in result.stderr
    assert snapshot(lake.root) == before


def promote_with_params(run_cli, lake: Lake, params: dict, public: list[str]) -> str:
    config = lake.root / "kfm-prov.toml"
    config.write_text(config.read_text().replace(
        "public_params = []", f"public_params = {json.dumps(public)}"))
    lake = Lake.open(lake.root)
    src = add_raw(lake, "data/raw/glo/a.csv", "id\n1\n")
    with lake.capture("glo", "pipelines/glo", params=params, **CODE) as run:
        run.use(src)
        run.output("p.csv", role="product").write_text("p")
    result = json.loads(run_cli("promote", run.run_id, "--json").stdout)
    return (lake.root / result["prov_bundle"]).read_text()


def test_the_bundle_publishes_only_allow_listed_values(run_cli, lake: Lake) -> None:
    params = {"year": 20201999, "crs": "EPSG:4326", "db_host": "db.internal.example",
              "region": "north-lake-77", "api_token_ref": "vault:etl/key"}
    bundle = promote_with_params(run_cli, lake, params, ["year", "crs"])
    assert "20201999" in bundle and "EPSG:4326" in bundle
    for private in ("db.internal.example", "north-lake-77", "vault:etl/key"):
        assert private not in bundle
    activity = next(a for a in json.loads(bundle)["bundle"].values()
                    for a in a.get("activity", {}).values() if "kfm:params" in a)
    published = json.loads(activity["kfm:params"])
    assert published["db_host"].startswith("sha256:") and published["year"] == 20201999


def test_an_allow_listed_key_holding_a_secret_is_still_a_digest(run_cli, lake: Lake) -> None:
    """The allow-list says which keys may be shown, never that a secret may."""
    bundle = promote_with_params(run_cli, lake, {"note": f"key {OPENAI[:-1]}x"}, ["note"])
    assert OPENAI[:-1] not in bundle


def test_public_params_must_be_a_list_of_names(run_cli, lake: Lake) -> None:
    config = lake.root / "kfm-prov.toml"
    config.write_text(config.read_text().replace("public_params = []", "public_params = 3"))
    result = run_cli("runs", expect=2)
    assert "prov.public_params" in result.stderr


def test_no_new_value_reaches_the_bundle_by_default(run_cli, lake: Lake) -> None:
    bundle = promote_with_params(run_cli, lake, {"crs": "EPSG:32614"}, [])
    assert "EPSG:32614" not in bundle
    assert Path  # keeps the import used when the module is read alone
