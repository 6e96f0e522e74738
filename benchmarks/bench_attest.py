"""What signing costs per version: promotion with and without a key, and verification.

    python -m benchmarks.bench_attest            # ~1 min on 2 cores
    python -m benchmarks.run --only attest       # the same rows in the `make bench` table

Two lakes built by real captures (raw → normalise → parcels, the smallest promotable
chain), one with a signing key configured, one without. Whole processes, start-up
included: ``kfm-prov promote`` of a fresh run in each (the difference is what signing
costs a promotion), ``kfm-prov attest`` (re-verify + sign an existing version),
``kfm-prov verify-artifact`` (the auditor's offline check) and ``kfm-prov verify
--require-signatures``. In process: building and signing the two statements of one
version, verifying one version's attestation (``publish.attest.verify_version``),
and signing one run at capture (``signing.sign_run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import (
    Row,
    committed_code,
    load_average,
    log,
    median,
    print_table,
    repeat,
)

FAMILY = "glo"
GEOJSON = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
           ' "geometry": {"type": "Polygon", "coordinates": [[[-97.6, 38.4], [-97.4, 38.4],'
           ' [-97.4, 38.6], [-97.6, 38.6], [-97.6, 38.4]]]}}]}')


def _lake(root: Path, key: Path | None, public: Path | None) -> object:
    from kfm_prov.lake import Lake

    lake = Lake.init(root)
    if key is not None:
        toml = root / "kfm-prov.toml"
        toml.write_text(toml.read_text() + f'\n[signing]\nkey = "{key}"\n'
                        f'\n[trust]\nkeys = ["{public}"]\n')
        lake = Lake.open(root)
    raw = root / "data/raw/glo/patents.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("id,name\n1,Smith\n2,Jones\n")
    lake.raw_add([raw], license="CC-BY-4.0", attribution="Kansas GLO", sensitivity="public")
    return lake


def _chain(lake: object, n: int) -> str:
    code = committed_code()
    with lake.capture(FAMILY, "pipelines/glo/normalise", **code) as a:  # type: ignore[attr-defined]
        a.use("data/raw/glo/patents.csv")
        a.output("normalised.csv").write_text(f"ID,NAME\n1,SMITH\n2,JONES\n{n},X\n")
    with lake.capture(FAMILY, "pipelines/glo/parcels", **code,  # type: ignore[attr-defined]
                      params={"crs": "EPSG:4326"}) as b:
        b.use(a.artifacts / "normalised.csv")
        b.output("parcels.geojson", role="product", sensitivity="public").write_text(
            GEOJSON.replace('"properties": {}', f'"properties": {{"n": {n}}}'))
    return str(b.run_id)


def _kfm(root: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFM_")}
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(root), *args],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kfm-prov {' '.join(args)}: {done.stderr}")


def run(out: Path, *, quick: bool = False) -> list[Row]:
    from kfm_prov.core import jsonio
    from kfm_prov.core.keys import generate, load_signing_key
    from kfm_prov.core.timeutil import now_utc
    from kfm_prov.publish import attest
    from kfm_prov.store.signing import sign_run, trusted_keys

    promotions = 3 if quick else 8
    work = Path(tempfile.mkdtemp(prefix="attest-", dir=out))
    try:
        made = generate(work / "keys")
        key = load_signing_key(made.private_path)
        log(f"attest: two lakes, {promotions} promotions each")
        signed = _lake(work / "signed", made.private_path, made.public_path)
        plain = _lake(work / "plain", None, None)
        times: dict[str, list[float]] = {"signed": [], "plain": []}
        for n in range(promotions):  # alternate, so load drifts hit both alike
            for name, lake in (("signed", signed), ("plain", plain)):
                run_id = _chain(lake, n)
                root = work / name
                times[name] += repeat(lambda r=root, i=run_id: _kfm(r, "promote", i), 1)
        root = work / "signed"
        config = signed.config  # type: ignore[attr-defined]
        latest = f"v{promotions}"
        cert_rel = f"data/prov/{FAMILY}/{latest}.certificate.json"
        cert = jsonio.read_json(root / cert_rel, display=cert_rel)
        records = {role: (root / rel).read_bytes()
                   for role, rel in attest.record_paths(config, FAMILY, latest).items()}
        params = {"crs": "EPSG:4326"}
        sign_once = repeat(lambda: attest.render(key, attest.statements(
            config, cert, records, params, time_verified=now_utc())), 200, warmup=5)
        from kfm_prov.store.digests import hash_files

        version_dir = root / "data/processed" / FAMILY / latest
        files = sorted(p for p in version_dir.rglob("*") if p.is_file())
        fresh = {p.relative_to(root).as_posix(): d for p, d in zip(files, hash_files(files),
                                                                     strict=True)}
        trusted = trusted_keys(config)
        verify_once = repeat(lambda: attest.verify_version(config, FAMILY, latest, trusted,
                                                           fresh, check_dcat=True), 50,
                             warmup=2)
        from kfm_prov.store.evidence import evidence_files
        from kfm_prov.store.receipts import load_run_receipts

        run_dir = cert["closure"]["runs"][-1]["run_dir"]
        receipts = load_run_receipts(root / run_dir, display=run_dir)
        evidence = evidence_files(config, run_dir)
        sign_run_once = repeat(lambda: sign_run(config, run_dir, receipts, evidence, key), 50,
                               warmup=2)
        product = next(p for p in files if p.name == "parcels.geojson")
        att = root / attest.attestation_rel(config, FAMILY, latest)
        artifact = repeat(lambda: _kfm(root, "verify-artifact", str(product), "--attestation",
                                       str(att), "--key", str(made.public_path)), 5, warmup=1)
        attest_cli = repeat(lambda: _kfm(root, "attest", FAMILY, latest), 5, warmup=1)
        verify_signed = repeat(lambda: _kfm(root, "verify", "--require-signatures"), 3,
                               warmup=1)
        verify_plain = repeat(lambda: _kfm(work / "plain", "verify"), 3, warmup=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    promote_signed, promote_plain = median(times["signed"]), median(times["plain"])
    ms = 1000
    return [
        Row("promote, whole process, signed", f"{promote_signed * ms:.0f} ms", verdict="info",
            detail=f"median of {promotions}; unsigned {promote_plain * ms:.0f} ms, so signing"
                   f" adds {(promote_signed - promote_plain) * ms:+.0f} ms per version"),
        Row("build + sign both statements of a version", f"{median(sign_once) * ms:.2f} ms",
            verdict="info", detail="in process, median of 200"),
        Row("verify one version's attestation", f"{median(verify_once) * ms:.2f} ms",
            verdict="info", detail="in process (envelopes, subjects, records), median of 50"),
        Row("sign one run at capture", f"{median(sign_run_once) * ms:.2f} ms", verdict="info",
            detail="in process, median of 50"),
        Row("verify-artifact, whole process", f"{median(artifact) * ms:.0f} ms",
            verdict="info", detail="no lake; median of 5"),
        Row("attest FAMILY VERSION, whole process", f"{median(attest_cli) * ms:.0f} ms",
            verdict="info", detail="re-verify + sign; median of 5"),
        Row(f"verify --require-signatures, {promotions} versions",
            f"{median(verify_signed) * ms:.0f} ms", verdict="info",
            detail=f"unsigned lake: {median(verify_plain) * ms:.0f} ms; median of 3"),
    ]


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="bench-attest-"))
    try:
        before = load_average()
        rows = run(out, quick="--quick" in sys.argv)
        print(f"signing cost per version; load average {before} before,"
              f" {load_average()} after")
        print_table(rows)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
