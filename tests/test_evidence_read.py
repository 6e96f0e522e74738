"""``read_evidence`` reads many runs, each file once (issue 17).

The gate and ``index rebuild`` rely on each run's evidence digest being the same however
many runs are read together: a batch must give,
run for run, what reading each run alone gives, and what ``evidence_digest`` (``record``)
says; a file changed in the middle of the batch changes that run's digest only.
"""

from __future__ import annotations

from kfm_prov.lake import Lake
from kfm_prov.store import evidence
from kfm_prov.store.evidence import evidence_digest, evidence_files, read_evidence
from tests.conftest import make_chain


def test_a_batch_read_ahead_agrees_with_each_run_read_alone(lake: Lake) -> None:
    runs = []
    while len(runs) < 40:
        chain = make_chain(lake)
        runs += [chain.a.rel_dir, chain.b.rel_dir]
    (lake.root / runs[7] / "logs" / "extra.log").write_text("token: " + "ghp_" + "a" * 36)
    (lake.root / runs[9] / "logs" / "big.log").write_bytes(b"x\n" * evidence._LOG_BLOB_BYTES)
    together = read_evidence(lake.config, runs)
    assert list(together) == runs
    for run_dir in runs:
        alone = read_evidence(lake.config, [run_dir])[run_dir]
        ev = together[run_dir]
        assert ev.digest == alone.digest == evidence_digest(
            lake.config, evidence_files(lake.config, run_dir))
        assert (ev.files, ev.datas, ev.findings, dict(ev.blobs)) == (
            alone.files, alone.datas, alone.findings, dict(alone.blobs))
        assert ev.receipts is not None and not ev.findings
    assert f"{runs[7]}/logs/extra.log" in together[runs[7]].blobs
    assert f"{runs[9]}/logs/big.log" not in together[runs[9]].blobs  # hashed, streamed
    before = {run_dir: ev.digest for run_dir, ev in together.items()}
    (lake.root / runs[20] / "run_manifest.json").write_bytes(
        (lake.root / runs[20] / "run_manifest.json").read_bytes() + b" ")
    after = {run_dir: ev.digest for run_dir, ev in read_evidence(lake.config, runs).items()}
    assert {d for d in runs if before[d] != after[d]} == {runs[20]}
