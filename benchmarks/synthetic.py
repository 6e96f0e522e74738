"""A synthetic lake of any size, deterministic from a seed, with real receipts.

    python -m benchmarks.synthetic --root bench-out/lake --runs 100000 --seed 7

What it writes is what kfm-prov itself writes for a captured run: ``run_record.json``,
``run_manifest.json``, ``validation_report.json`` (built with the receipt models and
written as ``jsonio`` writes them), ``prov.json`` (built with ``ProvBuilder`` exactly as
``publish_run`` does), ``logs/run.jsonl`` and ``logs/run.log``, and empty ``artifacts/``
and ``tmp/`` directories. Raw files are real files recorded with ``raw.add``. Receipts are
written directly, not through ``lake.capture`` (which would hash, validate and index
each run one by one: hours for 100,000 runs), and without fsync. Run artifacts are not
written (the index, ``trace`` and the gate never read a work file except the product
being checked), save for the chain family, whose every file exists so that it can be
checked and promoted; ``artifacts=True`` writes them all.

The shape of the lake:

* ``ref``: a few runs from raw data whose outputs other families use (fan-out across
  families);
* ``famNNN``: batches of four stages. ``ingest`` reads 1-3 raw files; one or two
  ``clean`` runs read some of its outputs (fan-out); ``join`` reads outputs of every
  clean run (fan-in), sometimes a ``ref`` output and a raw config file; ``product``
  reads join outputs and makes one ``product`` output (public) among intermediates.
  About 1 % of product runs fail and 5 % are re-run with the same inputs and bytes (one
  digest, two producers). Runs make ~10 outputs on average, so 100,000 runs make about
  a million entities;
* ``chain``: a line of ``chain`` runs, each reading the previous run's output and a raw
  config file, ending in a product: the gate's worst case for depth.

Every id, time, digest and byte is a function of the seed and the shape: the same
arguments give byte-identical trees (``tests/test_synthetic.py``). File contents are
short strings whose sha256 is the recorded digest, so any artifact can be materialised
later with :func:`materialise`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
STEP_SECONDS = 30  # between consecutive run starts across the whole lake
SUMMARY = "synthetic.json"
_INPUT_ROLES = ("primary", "auxiliary", "config")
RUNNER_HOSTS = ("runner-1", "runner-2", "runner-3", "runner-4")


@dataclass(frozen=True)
class Shape:
    """How big, and the seed. ``families`` 0 means one per 2,000 runs."""

    runs: int = 100_000
    seed: int = 7
    families: int = 0
    raw_per_family: int = 100
    chain: int = 1000
    ref_runs: int = 5
    artifacts: bool = False
    #: (checkout, commit, entry blob) of the lake's pipeline repository: every run names it,
    #: as a capture would, so the gate can check the code (set by ``generate``).
    code: tuple[str, ...] = ()

    def family_count(self) -> int:
        return self.families or max(1, self.runs // 2000)

    def quotas(self) -> tuple[int, int, int]:
        """Runs of ``ref``, of ``chain`` and of each regular family."""
        ref = min(self.ref_runs, max(1, self.runs // 20))
        chain = min(self.chain, max(0, self.runs - ref - self.family_count()))
        per_family = max(1, (self.runs - ref - chain) // self.family_count())
        return ref, chain, per_family


@dataclass(frozen=True)
class FilePlan:
    path: str
    digest: str
    role: str
    size: int
    media_type: str
    sensitivity: str | None = None
    content: bytes = b""  # what the file would hold; its sha256 is ``digest``


@dataclass
class RunPlan:
    family: str
    seq: int  # global start slot
    stage: str
    run_id: str = ""
    inputs: list[FilePlan] = field(default_factory=list)
    outputs: list[FilePlan] = field(default_factory=list)
    status: str = "success"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FamilyResult:
    family: str
    runs: int = 0
    inputs: int = 0
    outputs: int = 0
    distinct_outputs: int = 0
    products: list[tuple[str, str, str]] = field(default_factory=list)  # run, path, digest
    last_run: str = ""


# --- deterministic values ------------------------------------------------------------------

_MEDIA = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet",
          ".geojson": "application/geo+json", ".json": "application/json",
          ".yml": "application/yaml"}


def _content(*parts: object) -> bytes:
    return ("|".join(str(p) for p in parts) + "\n").encode("utf-8")


def _file(path: str, role: str, content: bytes, sensitivity: str | None = None) -> FilePlan:
    suffix = path[path.rfind("."):]
    return FilePlan(path, "sha256:" + hashlib.sha256(content).hexdigest(), role, len(content),
                    _MEDIA.get(suffix, "application/octet-stream"), sensitivity, content)


def _ulid(moment: datetime, rng: random.Random) -> str:
    from ulid import ULID

    millis = int(moment.timestamp() * 1000)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + rng.randbytes(10)))


def _commit(seed: int, pipeline: str) -> str:
    return hashlib.sha1(f"{seed}:{pipeline}".encode()).hexdigest()


def _start(seq: int) -> datetime:
    return BASE_TIME + timedelta(seconds=seq * STEP_SECONDS)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw_files(shape: Shape, family: str, count: int) -> list[FilePlan]:
    """The raw captures of a family: ``src-NNN.csv`` and one ``config.yml``."""
    files = [_file(f"data/raw/{family}/src-{k:03d}.csv", "primary",
                   _content("raw", shape.seed, family, k, "id,value")) for k in range(count)]
    files.append(_file(f"data/raw/{family}/config.yml", "config",
                       _content("config", shape.seed, family, "crs: EPSG:4326")))
    return files


# --- planning ------------------------------------------------------------------------------

class _Planner:
    """Plans the runs of one family in time order; outputs are named under their run."""

    def __init__(self, shape: Shape, family: str, slot: int, stride: int) -> None:
        self.shape = shape
        self.family = family
        self.rng = random.Random(f"{shape.seed}:{family}")
        self.slot = slot
        self.stride = stride
        self.count = 0
        self.runs: list[RunPlan] = []

    def new(self, stage: str, inputs: Sequence[FilePlan], **params: Any) -> RunPlan:
        seq = self.slot + self.count * self.stride
        self.count += 1
        run = RunPlan(self.family, seq, stage, _ulid(_start(seq), self.rng),
                      params={"stage": stage, **params})
        # a file used twice is one input; another run's output is used as ``primary``
        run.inputs = [f if f.role in _INPUT_ROLES else _with_role(f, "primary")
                      for f in {f.path: f for f in inputs}.values()]
        self.runs.append(run)
        return run

    def outputs(self, run: RunPlan, names: Iterable[str], *, product: str | None = None,
                same_as: RunPlan | None = None) -> list[FilePlan]:
        base = f"data/work/runs/{self.family}/{run.run_id}/artifacts"
        made = []
        for index, name in enumerate(names):
            # a re-run makes the same bytes as the run it repeats
            origin = same_as.run_id if same_as is not None else run.run_id
            role = "product" if name == product else "intermediate"
            made.append(_file(f"{base}/{name}", role,
                              _content("out", self.shape.seed, origin, index, name),
                              "public" if role == "product" else None))
        run.outputs = made
        return made


def plan_ref(shape: Shape) -> list[RunPlan]:
    """A few runs whose outputs every family may use, before everything else."""
    ref_runs, _, _ = shape.quotas()
    planner = _Planner(shape, "ref", -10 * (ref_runs + 1), 10)
    raws = raw_files(shape, "ref", 5)
    for k in range(ref_runs):
        run = planner.new("reference", [raws[k % 5], raws[-1]], table=k)
        planner.outputs(run, [f"lookup-{i:02d}.csv" for i in range(10)])
    return planner.runs


def plan_family(shape: Shape, index: int, ref: Sequence[RunPlan]) -> list[RunPlan]:
    """Batches of ingest → clean (1-2) → join → product until the family's quota."""
    _, _, quota = shape.quotas()
    family = f"fam{index:03d}"
    stride = shape.family_count() + 1
    planner = _Planner(shape, family, index + 1, stride)
    rng = planner.rng
    raws = raw_files(shape, family, shape.raw_per_family)
    sources, config = raws[:-1], raws[-1]
    ref_outputs = [f for run in ref for f in run.outputs]
    batch = 0
    while planner.count < quota:
        ingest = planner.new("ingest", rng.sample(sources, rng.randint(1, 3)), batch=batch)
        parts = planner.outputs(ingest, [f"part-{i:02d}.csv" for i in range(rng.randint(6, 16))])
        cleaned: list[FilePlan] = []
        for _ in range(rng.randint(1, 2)):
            if planner.count >= quota:
                break
            clean = planner.new("clean", rng.sample(parts, min(len(parts), rng.randint(1, 3))),
                                batch=batch)
            made = planner.outputs(clean, [f"clean-{i:02d}.parquet"
                                           for i in range(rng.randint(4, 14))])
            cleaned += rng.sample(made, min(len(made), rng.randint(1, 2)))
        if planner.count >= quota:
            break
        join_inputs = list(cleaned)
        if rng.random() < 0.3:
            join_inputs.append(_with_role(rng.choice(ref_outputs), "auxiliary"))
        if rng.random() < 0.2:
            join_inputs.append(config)
        join = planner.new("join", join_inputs, batch=batch)
        joined = planner.outputs(join, [f"joined-{i:02d}.parquet"
                                        for i in range(rng.randint(6, 16))])
        if planner.count >= quota:
            break
        product_inputs = rng.sample(joined, min(len(joined), rng.randint(1, 4)))
        names = ["product.geojson", *(f"extra-{i:02d}.csv" for i in range(rng.randint(4, 12)))]
        product = planner.new("product", product_inputs, batch=batch)
        planner.outputs(product, names, product="product.geojson")
        if rng.random() < 0.01:
            product.status = "failed"
            product.outputs = product.outputs[1:]
        elif rng.random() < 0.05 and planner.count < quota:
            again = planner.new("product", product_inputs, batch=batch, rerun=True)
            planner.outputs(again, names, product="product.geojson", same_as=product)
        batch += 1
    return planner.runs


def plan_chain(shape: Shape) -> list[RunPlan]:
    """``chain`` runs in a line: raw → 1 → 2 → … → product."""
    _, length, _ = shape.quotas()
    planner = _Planner(shape, "chain", 0, shape.family_count() + 1)
    raws = raw_files(shape, "chain", 1)
    previous = _with_role(raws[0], "primary")
    for step in range(length):
        run = planner.new("step", [previous, raws[-1]], step=step)
        last = step == length - 1
        names = ["product.csv" if last else "step.csv", "metrics.json", "sample.csv"]
        made = planner.outputs(run, names, product="product.csv" if last else None)
        previous = made[0]
    return planner.runs


def _with_role(plan: FilePlan, role: str) -> FilePlan:
    return FilePlan(plan.path, plan.digest, role, plan.size, plan.media_type, None, plan.content)


# --- writing -------------------------------------------------------------------------------

def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _receipts(shape: Shape, run: RunPlan) -> Any:
    from kfm_prov.store.digests import spec_hash
    from kfm_prov.store.receipts import (
        FileEntry,
        Gate,
        RunManifest,
        Runner,
        RunReceipts,
        RunRecord,
        ValidationReport,
    )

    pipeline = f"pipelines/{run.family}/{run.stage}"
    started = _start(run.seq)
    ended = started + timedelta(seconds=STEP_SECONDS // 2)
    failed = run.status != "success"
    record = RunRecord(
        run_id=run.run_id, dataset_family=run.family, pipeline_id=pipeline,
        git_commit=shape.code[1] if shape.code else _commit(shape.seed, pipeline),
        started_at=_stamp(started),
        ended_at=_stamp(ended), status=run.status,
        runner=Runner("ci", RUNNER_HOSTS[run.seq % len(RUNNER_HOSTS)]),
        exit_code=1 if failed else 0,
        command=["python", "-m", pipeline.replace("/", "."), "--stage", run.stage],
        environment={"TZ": "UTC", "PYTHONHASHSEED": "0"},
        software={"kfm-prov": "0.1.0", "python": "3.11.7"},
        extra={"process": {"pid": 1000 + run.seq % 30000}, **({"code": {
            "repository": None, "worktree": shape.code[0], "entry": "pipeline.py",
            "entry_blob": shape.code[2], "problems": []}} if shape.code else {})})
    inputs = [FileEntry(f.path, f.digest, f.role, f.size, f.media_type) for f in run.inputs]
    outputs = [FileEntry(f.path, f.digest, f.role, f.size, f.media_type,
                         {"sensitivity": f.sensitivity} if f.sensitivity else {})
               for f in run.outputs]
    manifest = RunManifest(run_id=run.run_id, spec_hash=spec_hash(
        {"pipeline_id": pipeline, "params": run.params}), inputs=inputs, outputs=outputs,
        params=run.params, versions={"kfm-prov": "0.1.0"})
    gates = [Gate("schema", "fail" if failed else "pass", {"rows": len(run.outputs) * 100}),
             Gate("inputs_unchanged", "pass", {"inputs": len(inputs)}),
             Gate("outputs", "pass", {"outputs": len(outputs)})]
    report = ValidationReport(
        run_id=run.run_id, overall_status="fail" if failed else "pass", gates=gates,
        policy={"labels_emitted": sorted({f.sensitivity for f in run.outputs
                                          if f.sensitivity}),
                "redactions_applied": False})
    return RunReceipts(record, manifest, report), started, ended


def _logs(run: RunPlan, started: datetime, ended: datetime) -> tuple[bytes, bytes]:
    lines = [(started, "info", f"run {run.run_id} started: {run.family} /"
              f" pipelines/{run.family}/{run.stage}", None)]
    for index, item in enumerate(run.inputs):
        lines.append((started + timedelta(milliseconds=10 * (index + 1)), "info",
                      f"input {item.path} {item.digest[:19]}…",
                      {"event": "use", "role": item.role}))
    lines.append((ended, "info", f"run {run.run_id} ended: {run.status}", None))
    structured, human = [], []
    for moment, level, text, fields in lines:
        entry = {"time": _stamp(moment), "level": level, "message": text,
                 **({"fields": fields} if fields else {})}
        structured.append(json.dumps(entry, ensure_ascii=False) + "\n")
        human.append(f"{_stamp(moment)} {level.upper():5} {text}\n")
    return "".join(structured).encode("utf-8"), "".join(human).encode("utf-8")


def write_run(shape: Shape, config: Any, run: RunPlan, raw_infos: dict[str, Any],
              *, artifacts: bool) -> None:
    """The run directory exactly as a captured run leaves it (artifacts optional)."""
    from kfm_prov.core import jsonio
    from kfm_prov.prov.document import ProvBuilder, report_state, run_states
    from kfm_prov.store.digests import sha256_bytes

    receipts, started, ended = _receipts(shape, run)
    rel_dir = f"{config.rel('runs')}/{run.family}/{run.run_id}"
    directory = config.root / rel_dir
    for sub in ("artifacts", "logs", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    if artifacts:
        for out in run.outputs:
            _write(config.root / out.path, out.content)
    report_bytes = jsonio.dumps(receipts.report.to_dict())
    _write(directory / "run_manifest.json", jsonio.dumps(receipts.manifest.to_dict()))
    _write(directory / "validation_report.json", report_bytes)
    _write(directory / "run_record.json", jsonio.dumps(receipts.record.to_dict()))
    structured, human = _logs(run, started, ended)
    _write(directory / "logs" / "run.jsonl", structured)
    _write(directory / "logs" / "run.log", human)
    builder = ProvBuilder(config.namespace)
    inputs, outputs, _ = run_states(config, receipts, raw_infos)
    builder.run(receipts, inputs, outputs,
                report=report_state(rel_dir, sha256_bytes(report_bytes)),
                publish_user=config.publish_user)
    _write(directory / "prov.json", builder.serialize())


def _raw_infos(shape: Shape) -> dict[str, Any]:
    """What ``raw.lookup_many`` would return for every raw file, without reading YAML."""
    from kfm_prov.store.raw import RawInfo

    families = ["ref", "chain", *(f"fam{i:03d}" for i in range(shape.family_count()))]
    infos: dict[str, Any] = {}
    for family in families:
        count = 5 if family == "ref" else 1 if family == "chain" else shape.raw_per_family
        for plan in raw_files(shape, family, count):
            infos[plan.path] = RawInfo(plan.path, plan.digest, "CC-BY-4.0",
                                       "Synthetic Survey Office", "public", {},
                                       _stamp(BASE_TIME), f"data/raw/{family}/manifest.yml")
    return infos


def _summarise(family: str, runs: Sequence[RunPlan]) -> FamilyResult:
    result = FamilyResult(family)
    seen: set[str] = set()
    for run in runs:
        result.runs += 1
        result.inputs += len(run.inputs)
        result.outputs += len(run.outputs)
        for out in run.outputs:
            if out.digest not in seen:
                seen.add(out.digest)
                result.distinct_outputs += 1
            if out.role == "product" and run.status == "success":
                result.products.append((run.run_id, out.path, out.digest))
    result.last_run = runs[-1].run_id if runs else ""
    return result


def _family_task(args: tuple[Shape, str, int]) -> FamilyResult:
    shape, root, index = args
    from kfm_prov.config import load_config

    config = load_config(Path(root))
    infos = _raw_infos(shape)
    ref = plan_ref(shape)
    if index == -1:
        runs, artifacts = ref, shape.artifacts
    elif index == -2:
        runs, artifacts = plan_chain(shape), True
    else:
        runs, artifacts = plan_family(shape, index, ref), shape.artifacts
    for run in runs:
        write_run(shape, config, run, infos, artifacts=artifacts)
    return _summarise(runs[0].family if runs else "", runs)


def materialise(root: Path, shape: Shape, run_id: str) -> list[str]:
    """Write the artifacts of one run (found by id) and return their paths."""
    for runs in _all_plans(shape):
        for run in runs:
            if run.run_id == run_id:
                for out in run.outputs:
                    _write(root / out.path, out.content)
                return [out.path for out in run.outputs]
    raise KeyError(run_id)


def _all_plans(shape: Shape) -> Iterable[list[RunPlan]]:
    ref = plan_ref(shape)
    yield ref
    yield plan_chain(shape)
    for index in range(shape.family_count()):
        yield plan_family(shape, index, ref)


#: One repository for every synthetic lake: its absolute path is in every run record, so
#: lakes made from the same seed at different places stay byte-identical.
PIPELINES = Path(tempfile.gettempdir()) / "kfm-prov-synthetic-pipelines"


def _pipeline_repository(checkout: Path) -> tuple[str, str, str]:
    """A git repository with one committed ``pipeline.py`` (fixed names and dates, so the
    same commit every time): (checkout, commit, blob of the file). Made once, atomically
    (built beside, then renamed into place), and reused by every later lake."""
    import shutil
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z", "GIT_CONFIG_NOSYSTEM": "1"}

    def git(where: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()

    if not (checkout / ".git").is_dir():
        building = Path(tempfile.mkdtemp(prefix=f".{checkout.name}.", dir=checkout.parent))
        (building / "pipeline.py").write_text("# the synthetic lake's pipelines\n",
                                              encoding="utf-8")
        git(building, "init", "-q")
        git(building, "add", "pipeline.py")
        git(building, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "pipelines")
        try:
            os.rename(building, checkout)
        except OSError:  # another process made it first: the same commit
            shutil.rmtree(building, ignore_errors=True)
    commit, blob = git(checkout, "rev-parse", "HEAD", "HEAD:pipeline.py").split()
    return str(checkout.resolve()), commit, blob


def _pin_trail(config: Any, directory: str) -> None:
    """The label trail ``raw add`` wrote, its entries stamped ``BASE_TIME``: raw add stamps
    them with when it ran, and the lake must be the same bytes for the same seed. The
    trail stays whole, so the gate that check and promote benchmark passes it."""
    from kfm_prov.core import jsonio
    from kfm_prov.store import labels

    events = labels.read_trail(config, directory) or []
    jsonio.atomic_write(config.root / labels.trail_rel(directory),
                        b"".join(replace(e, at=_stamp(BASE_TIME)).line() for e in events))


def generate(root: Path, shape: Shape, *, workers: int | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Write the lake under ``root`` (which must not hold one); returns the summary.

    The summary (also written to ``root/synthetic.json``) gives the counts, the chain's
    last run, and product outputs to trace.
    """
    from kfm_prov.lake import Lake
    from kfm_prov.store import raw

    began = time.perf_counter()
    if (root / SUMMARY).exists():
        raise FileExistsError(f"{root} already holds a synthetic lake")
    lake = Lake.init(root)
    config = lake.config
    families = ["ref", "chain", *(f"fam{i:03d}" for i in range(shape.family_count()))]
    raw_count = 0
    for family in families:
        count = 5 if family == "ref" else 1 if family == "chain" else shape.raw_per_family
        plans = raw_files(shape, family, count)
        for plan in plans:
            path = root / plan.path
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, plan.content)
        raw.add(config, [p.path for p in plans], license="CC-BY-4.0",
                attribution="Synthetic Survey Office", sensitivity="public",
                captured_at=_stamp(BASE_TIME), by="synthetic")
        _pin_trail(config, f"data/raw/{family}")
        raw_count += len(plans)
    shape = replace(shape, code=_pipeline_repository(PIPELINES))
    tasks = [(shape, str(root), index) for index in (-1, -2, *range(shape.family_count()))]
    results: list[FamilyResult] = []
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    if workers == 1:
        results = [_family_task(task) for task in tasks]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(_family_task, tasks):
                results.append(result)
                if progress:
                    print(f"  {result.family}: {result.runs} runs", file=sys.stderr)
    results.sort(key=lambda r: r.family)
    by_family = {r.family: r for r in results}
    products = [p for r in results if r.family.startswith("fam") for p in r.products]
    rng = random.Random(f"{shape.seed}:targets")
    summary = {
        "shape": asdict(shape),
        "runs": sum(r.runs for r in results),
        "inputs": sum(r.inputs for r in results),
        "outputs": sum(r.outputs for r in results),
        "raw_files": raw_count,
        "entities": sum(r.distinct_outputs for r in results) + raw_count,
        "chain_last_run": by_family["chain"].last_run if "chain" in by_family else None,
        "chain_product": (by_family["chain"].products or [None])[0],
        "trace_targets": rng.sample(products, min(len(products), 200)),
        "seconds": round(time.perf_counter() - began, 1),
    }
    (root / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=Shape.runs)
    parser.add_argument("--seed", type=int, default=Shape.seed)
    parser.add_argument("--families", type=int, default=0)
    parser.add_argument("--raw-per-family", type=int, default=Shape.raw_per_family)
    parser.add_argument("--chain", type=int, default=Shape.chain)
    parser.add_argument("--artifacts", action="store_true", help="write every artifact")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    shape = Shape(runs=args.runs, seed=args.seed, families=args.families,
                  raw_per_family=args.raw_per_family, chain=args.chain,
                  artifacts=args.artifacts)
    summary = generate(args.root, shape, workers=args.workers, progress=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "trace_targets"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
