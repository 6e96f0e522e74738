"""A pipeline step instrumented with the real openlineage-python client (run by the tests).

The client is configured only by the environment (OPENLINEAGE_URL, OPENLINEAGE_API_KEY), as
in production. Usage: ol_client_job.py RUN_ID INPUT OUTPUT COMMIT complete|fail
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    error_message_run,
    source_code_location_job,
)


@attr.define
class KfmDigestDatasetFacet(DatasetFacet):
    sha256: str
    size: int

    @staticmethod
    def _get_schema() -> str:
        return ("https://kfm-prov.org/spec/facets/1-0-0/KfmDigestDatasetFacet.json"
                "#/$defs/KfmDigestDatasetFacet")


def now() -> str:
    return datetime.now(UTC).isoformat()


def main(run_id: str, source: str, target: str, commit: str, outcome: str) -> None:
    client = OpenLineageClient()
    job = Job(namespace="glo-airflow", name="parcels_dag.normalise", facets={
        "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
            type="git", url="https://github.com/example/pipelines", version=commit)})
    inputs = [InputDataset(namespace="file", name=source)]
    client.emit(RunEvent(eventType=RunState.START, eventTime=now(), run=Run(runId=run_id),
                         job=job, inputs=inputs))
    if outcome == "fail":
        client.emit(RunEvent(
            eventType=RunState.FAIL, eventTime=now(), job=job, inputs=inputs,
            run=Run(runId=run_id, facets={"errorMessage": error_message_run.ErrorMessageRunFacet(
                message="boom: the source had no rows", programmingLanguage="python")})))
        return
    data = Path(source).read_bytes().upper()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_bytes(data)
    digest = KfmDigestDatasetFacet(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=now(), run=Run(runId=run_id),
                         job=job, inputs=inputs,
                         outputs=[OutputDataset(namespace="file", name=target,
                                                facets={"kfm_digest": digest})]))


if __name__ == "__main__":
    main(*sys.argv[1:6])
