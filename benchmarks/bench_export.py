"""Exporting 10,000 PROV records as PROV-JSON with ``ProvBuilder``.

One run with 3,330 outputs and one input gives 1 activity, 3,331 entities, 1 usage,
3,330 generations and 3,330 derivations plus its agents and associations: ~10,000
records. The time is building the document and serialising it to PROV-JSON bytes. A
second figure doubles the size: linear work doubles the time, quadratic work quadruples it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import Row, at_most, log, median, repeat


def receipts(outputs: int) -> Any:
    from kfm_prov.store.receipts import (
        FileEntry,
        RunManifest,
        Runner,
        RunReceipts,
        RunRecord,
        ValidationReport,
    )

    run_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    record = RunRecord(run_id, "export", "pipelines/export", "0" * 40,
                       "2024-01-01T00:00:00.000000Z", "2024-01-01T00:01:00.000000Z",
                       "success", Runner("ci", "runner-1"))
    inputs = [FileEntry("data/raw/export/source.csv", "sha256:" + "1" * 64, "primary", 10,
                        "text/csv")]
    outputs = [FileEntry(f"data/work/runs/export/{run_id}/artifacts/part-{i:05d}.csv",
                         f"sha256:{i:064x}", "intermediate", 4096, "text/csv")
               for i in range(outputs)]
    manifest = RunManifest(run_id, "sha256:" + "2" * 64, inputs, outputs, {"parts": 1})
    return RunReceipts(record, manifest, ValidationReport(run_id, "pass", []))


def build_and_serialise(data: Any) -> tuple[int, int]:
    from kfm_prov.prov.document import FileState, ProvBuilder

    builder = ProvBuilder("https://example.org/kfm/")
    inputs = [FileState(e.path, e.digest, "raw", e.role, e.size, e.media_type)
              for e in data.manifest.inputs]
    outputs = [FileState(e.path, e.digest, "work", e.role, e.size, e.media_type)
               for e in data.manifest.outputs]
    builder.run(data, inputs, outputs)
    body = builder.serialize()
    return len(builder.doc.records), len(body)


def run(out: Path, *, quick: bool = False) -> list[Row]:
    rows = []
    base = 0.0
    for outputs in (3330, 6660):
        data = receipts(outputs)
        records, size = build_and_serialise(data)
        log(f"exporting {records} PROV records")
        times = repeat(lambda data=data: build_and_serialise(data), 3 if quick else 5)
        figure = f"export {records:,} PROV records as PROV-JSON"
        if outputs == 3330:
            rows.append(Row(figure, f"{median(times):.3f} s ({size / 1e6:.1f} MB)", "<= 0.5 s",
                            at_most(median(times), 0.5, "s"),
                            "ProvBuilder.run + serialize, median of 5"))
        else:
            ratio = median(times) / base
            rows.append(Row(figure, f"{median(times):.3f} s = {ratio:.2f}x the 10k figure",
                            "linear (~2x)", "info",
                            "twice the records: ~2x means no quadratic work"))
        base = median(times)
    return rows
