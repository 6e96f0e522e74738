"""Tampering, secrets, sizes and hostile paths: each caught, naming the file.

Every case edits a lake after the fact the way an attacker or an accident would, then
asks ``check``, ``verify`` or ``trace --verify``, which must fail and name what changed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from kfm_prov.core.jsonio import MAX_JSON_BYTES, MAX_YAML_BYTES
from kfm_prov.errors import InputError
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.store.certificate import verify_certificate
from kfm_prov.store.digests import sha256_bytes
from kfm_prov.store.raw import MAX_CHECKSUMS_BYTES, read_checksums
from tests.conftest import CODE, CODE_ARGS, Chain, add_raw, one_error_line, snapshot, write

PY = sys.executable


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def fails_naming(run_cli, name: str, *args: str) -> str:
    """The command exits 1 and its output (``--json``: with every finding's file) names
    ``name``."""
    result = run_cli(*args, "--json", expect=1)
    output = result.stdout + result.stderr
    assert name in output, output
    assert "Traceback" not in output and "internal error" not in output
    return output


# --- tampering ---------------------------------------------------------------------------------

def test_a_raw_file_changed_after_capture(run_cli, lake: Lake, chain: Chain,
                                          promoted: PromotionResult) -> None:
    (lake.root / chain.raw).write_text("id,name\n1,Forged\n")
    before = snapshot(lake.root)
    assert "raw-modified" in fails_naming(run_cli, chain.raw, "check", chain.b.run_id)
    fails_naming(run_cli, chain.raw, "verify")
    fails_naming(run_cli, chain.raw, "trace", promoted.files[0], "--verify")
    assert snapshot(lake.root) == before  # none of them wrote anything


def test_a_processed_file_changed_after_promotion(run_cli, lake: Lake, chain: Chain,
                                                  promoted: PromotionResult) -> None:
    product = writable(lake.root / promoted.files[0])
    product.write_text(product.read_text().replace("-97.6", "-97.7"))
    out = fails_naming(run_cli, promoted.files[0], "verify")
    assert "processed-modified" in out
    fails_naming(run_cli, promoted.files[0], "trace", promoted.files[0], "--verify")
    assert [f.code for f in verify_certificate(lake.config, promoted.certificate)] == [
        "file-modified"]


def test_a_receipt_edited_to_match_a_forged_file(run_cli, lake: Lake, chain: Chain,
                                                 promoted: PromotionResult) -> None:
    """Forge the product of the promoted run and rewrite its manifest digest to match."""
    forged = b'{"type": "FeatureCollection", "features": []}'
    (chain.b.artifacts / "parcels.geojson").write_bytes(forged)
    manifest_path = chain.b.dir / "run_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["outputs"][0]["digest"] = sha256_bytes(forged)
    manifest["outputs"][0]["size"] = len(forged)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    out = fails_naming(run_cli, chain.b.rel_dir, "check", chain.b.run_id)
    assert "receipt-modified" in {f["code"] for f in json.loads(out)["findings"]}
    fails_naming(run_cli, chain.b.run_id, "verify")  # the certificate names the run
    findings = verify_certificate(lake.config, promoted.certificate)
    assert {(f.code, f.file) for f in findings} == {("receipt-modified", chain.b.rel_dir)}


def test_a_forged_raw_file_with_its_checksums_rewritten(run_cli, lake: Lake, chain: Chain,
                                                        promoted: PromotionResult) -> None:
    forged = "id,name\n1,Forged\n"
    (lake.root / chain.raw).write_text(forged)
    sums = lake.root / "data/raw/glo/checksums.sha256"
    sums.write_text(f"{sha256_bytes(forged.encode())[7:]}  patents.csv\n")
    assert "raw-modified" in fails_naming(run_cli, chain.raw, "check", chain.b.run_id)
    out = fails_naming(run_cli, chain.raw, "verify")  # the certificate still knows
    assert promoted.certificate in out


@pytest.mark.parametrize("edit", ["merkle-root", "closure-run-commit", "entity-license",
                                  "run-id", "waiver", "family", "dropped-run"])
def test_an_edited_certificate(run_cli, lake: Lake, chain: Chain, promoted: PromotionResult,
                               edit: str) -> None:
    path = writable(lake.root / promoted.certificate)
    cert = json.loads(path.read_text())
    if edit == "merkle-root":
        cert["merkle"]["root"] = "sha256:" + "0" * 64
    elif edit == "closure-run-commit":
        cert["closure"]["runs"][0]["git_commit"] = "f" * 40
    elif edit == "entity-license":
        cert["closure"]["entities"][0]["license"] = "CC0-1.0"
    elif edit == "run-id":
        cert["run_id"] = chain.a.run_id
    elif edit == "waiver":
        cert["waiver"] = {"approved_by": "nobody"}
    elif edit == "family":
        cert["family"] = "other"
    else:
        cert["closure"]["runs"] = cert["closure"]["runs"][1:]
    path.write_text(json.dumps(cert))
    out = fails_naming(run_cli, promoted.certificate, "verify")
    assert "certificate" in out
    assert any(f.code == "certificate-edited"
               for f in verify_certificate(lake.config, promoted.certificate))


# --- secrets ---------------------------------------------------------------------------------

SECRET = "hunter2-Sup3rSecret"


def test_secrets_never_reach_receipts_or_logs(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/in.csv", "id\n1\n", sensitivity="public")
    script = (f"import os; print('connecting with password={SECRET}');"
              f" import sys; print('token: {SECRET}', file=sys.stderr);"
              " open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'o.csv'), 'w').write('x')")
    run_cli("run", "-f", "glo", "-p", "p", *CODE_ARGS, "-i", src, "-o", "o.csv:product",
            "--param", f"password={SECRET}", "--", PY, "-c", script, f"--api-key={SECRET}")
    (run,) = lake.runs()
    run_dir = lake.root / run.run_dir
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    report = json.loads((run_dir / "validation_report.json").read_text())
    assert any(g["name"] == "secrets" for g in report["gates"])
    with lake.capture("glo", "p", **CODE, params={"db": f"postgres://u:{SECRET}@h/d"}) as c:
        c.use(src)
        c.log(f"retrying with token={SECRET}")
        c.output("p.csv", role="product").write_text("p")
    for path in c.dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_gate_refuses_a_secret_written_after_recording(run_cli, lake: Lake,
                                                           chain: Chain) -> None:
    log = chain.b.logs / "run.log"
    log.write_text(log.read_text() + f"debug: password={SECRET}\n")
    result = run_cli("check", chain.b.run_id, "--json", expect=1)
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert {"receipt-modified", "secret-in-log"} <= codes
    assert SECRET not in result.stdout + result.stderr
    refusal = run_cli("promote", chain.b.run_id, expect=1)
    assert SECRET not in refusal.stdout + refusal.stderr
    for path in chain.b.dir.glob("refusals/*.json"):
        assert SECRET not in path.read_text()


# --- sizes -------------------------------------------------------------------------------------

def sparse(path: Path, size: int, head: bytes = b"{") -> Path:
    """A file of ``size`` bytes that costs nothing to make (a hole after ``head``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def test_a_200_mb_receipt_is_refused_without_reading_it(run_cli, lake: Lake,
                                                        chain: Chain) -> None:
    big = 200 * 1024 * 1024
    start = time.monotonic()
    receipt = sparse(lake.root / "elsewhere/run_manifest.json", big)
    result = run_cli("validate", str(receipt), expect=1)
    assert "limit" in result.stdout
    os.replace(receipt, chain.b.dir / "run_manifest.json")
    assert "limit" in fails_naming(run_cli, chain.b.rel_dir, "check", chain.b.run_id)
    line = one_error_line(run_cli("record", str(chain.b.dir), expect=2))
    assert "limit" in line and "run_manifest.json" in line
    prov = sparse(lake.root / "elsewhere/huge.json", 300 * 1024 * 1024)
    assert "limit" in one_error_line(run_cli("prov-check", str(prov), expect=2))
    assert time.monotonic() - start < 20  # refused by size, never parsed


def test_oversized_manifests_and_checksums_are_refused(run_cli, lake: Lake,
                                                       chain: Chain) -> None:
    sums = lake.root / "data/raw/glo/checksums.sha256"
    original = sums.read_bytes()
    sparse(sums, MAX_CHECKSUMS_BYTES + 1, original)
    with pytest.raises(InputError, match="limit"):
        read_checksums(sums, display="checksums.sha256")
    fails_naming(run_cli, "checksums.sha256", "check", chain.b.run_id)
    sums.write_bytes(original)
    manifest = lake.root / "data/raw/glo/manifest.yml"
    text = manifest.read_text()
    manifest.write_text(text + "# " + "x" * MAX_YAML_BYTES + "\n")
    fails_naming(run_cli, "manifest.yml", "check", chain.b.run_id)
    assert MAX_JSON_BYTES < 200 * 1024 * 1024


def test_checksums_are_streamed_for_lookups(tmp_path: Path) -> None:
    """A lookup keeps the names it wants, however many lines the file has."""
    path = tmp_path / "checksums.sha256"
    lines = [f"{i:064x}  part/{i}.csv\n" for i in range(50_000)]
    path.write_text("".join(lines))
    wanted = read_checksums(path, display="c", only={"part/7.csv", "part/49999.csv"})
    assert wanted == {"part/7.csv": f"sha256:{7:064x}", "part/49999.csv": f"sha256:{49999:064x}"}
    assert len(read_checksums(path, display="c")) == 50_000
    path.write_text("".join(lines[:10]) + "zz  bad line\n")
    with pytest.raises(InputError) as caught:  # every line is still checked
        read_checksums(path, display="c", only={"part/1.csv"})
    assert caught.value.field == "line 11"


# --- paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.csv", "data/raw/glo/../../../x",
                                 "data/raw/glo/a\nb.csv", "data/raw/glo/" + "a" * 300,
                                 "data/raw/glo/link/normalised.csv", "data/raw/glo/escape.csv"])
def test_run_inputs_that_leave_their_place_are_refused(run_cli, lake: Lake, chain: Chain,
                                                       bad: str) -> None:
    os.symlink(chain.a.artifacts, lake.root / "data/raw/glo/link")  # work bytes, raw path
    os.symlink("/etc/hostname", lake.root / "data/raw/glo/escape.csv")
    before = snapshot(lake.root)
    result = run_cli("run", "-f", "glo", "-p", "p", *CODE_ARGS, "-i", bad, "--", PY,
                     "-c", "pass", expect=2)
    one_error_line(result)
    assert snapshot(lake.root) == before  # no run directory left behind


@pytest.mark.parametrize("bad", ["../escape.csv", "/tmp/abs.csv", "a\x00b.csv", "a\nb.csv",
                                 "up/normalised.csv"])
def test_outputs_that_leave_the_run_are_refused(run_cli, lake: Lake, chain: Chain,
                                                bad: str) -> None:
    script = ("import os, shutil; up = os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'up');"
              f" shutil.rmtree(up, ignore_errors=True); os.symlink({str(chain.a.artifacts)!r}, up)")
    result = run_cli("run", "-f", "glo", "-p", "p", *CODE_ARGS, "-o", f"{bad}:product",
                     "--", PY, "-c", script, expect=None)
    assert result.exit_code in (1, 2), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for run in lake.runs():
        assert run.run_id in (chain.a.run_id, chain.b.run_id) or run.status == "failed"


def test_a_product_that_is_a_symlink_to_a_raw_file(run_cli, lake: Lake, chain: Chain) -> None:
    with lake.capture("glo", "p", **CODE) as run:
        run.use(chain.raw)
        run.output("copy.csv", role="product").write_text("id,name\n1,Smith\n2,Jones\n")
    product = run.artifacts / "copy.csv"
    product.unlink()
    os.symlink(lake.root / chain.raw, product)  # same bytes, but the raw file itself
    result = run_cli("check", run.run_id, "--json", expect=1)
    assert "output-missing" in {f["code"] for f in json.loads(result.stdout)["findings"]}
    run_cli("promote", run.run_id, expect=1)
    with (pytest.raises(Exception, match="failed its own checks"),
          lake.capture("glo", "p", **CODE) as again):
        again.use(chain.raw)
        again.output("copy.csv", role="product")
        os.symlink(lake.root / chain.raw, again.artifacts / "copy.csv")
    assert lake.resolve_run(again.run_id).status == "failed"


def test_raw_add_refuses_a_file_reached_through_a_symlinked_directory(
        run_cli, lake: Lake, chain: Chain) -> None:
    os.symlink(chain.a.artifacts, lake.root / "data/raw/glo/work")
    before = snapshot(lake.root)
    line = one_error_line(run_cli("raw", "add", "data/raw/glo/work/normalised.csv",
                                  "--license", "CC0-1.0", "--attribution", "x", expect=2))
    assert "symlink" in line
    assert snapshot(lake.root) == before
    write(lake.root / "data/raw/glo/ok.csv", "fine")
    run_cli("raw", "add", "data/raw/glo/ok.csv", "--license", "CC0-1.0", "--attribution", "x")
