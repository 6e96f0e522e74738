"""Capturing a run as it happens: ``with lake.capture(family, pipeline_id) as run:``.

The run directory and a ``running`` run record exist from the first moment, so a run that
dies leaves a valid receipt that says so. On exit the inputs are re-checked (a change
while the run read them is recorded and fails the run), the outputs hashed, the three
receipts written (run record last, so ``success`` is the final word), then ``prov.json``
and the index entry. Everything kfm-prov writes is scrubbed of secrets first.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kfm_prov import __version__, jsonio
from kfm_prov.config import SENSITIVITIES, LakeConfig
from kfm_prov.context import current_runner, git_commit, recorded_environment
from kfm_prov.digests import DigestCache, hash_files, spec_hash, stat_key
from kfm_prov.errors import CheckFailed, InputError, UsageError
from kfm_prov.mediatypes import media_type
from kfm_prov.paths import check_relative, resolve_inside, to_relative
from kfm_prov.receipts import (
    FileEntry,
    Gate,
    RunManifest,
    Runner,
    RunReceipts,
    RunRecord,
    ValidationReport,
)
from kfm_prov.record import RecordedRun, publish_run, run_dir_rel
from kfm_prov.secrets import SecretFinding, scrub_argv, scrub_data, scrub_env, scrub_text
from kfm_prov.timeutil import now_utc
from kfm_prov.validation import validate_data

INPUT_ROLES = ("primary", "auxiliary", "config")
OUTPUT_ROLES = ("intermediate", "product")
GATE_STATUSES = ("pass", "fail", "warn", "skip", "waived")


@dataclass
class _Input:
    rel: str
    role: str
    digest: str
    stat: tuple[int, ...]
    path: Path


@dataclass
class _Output:
    rel: str
    role: str
    sensitivity: str | None


@dataclass
class _Redaction:
    source: str
    output: str
    profile: dict[str, Any]
    sensitivity: str


@dataclass
class Run:
    """A run in progress. Create it with ``Lake.capture`` (or ``Run.start``)."""

    config: LakeConfig
    run_id: str
    family: str
    pipeline_id: str
    params: dict[str, Any]
    spec_hash: str
    spec_path: str | None
    record: RunRecord
    rel_dir: str
    _inputs: dict[str, _Input] = field(default_factory=dict)
    _outputs: dict[str, _Output] = field(default_factory=dict)
    _gates: list[Gate] = field(default_factory=list)
    _redactions: list[_Redaction] = field(default_factory=list)
    _secrets: list[SecretFinding] = field(default_factory=list)
    _log_files: tuple[IO[str], IO[str]] | None = None
    result: RecordedRun | None = None

    # -- where things are -------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.config.root / self.rel_dir

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def tmp(self) -> Path:
        return self.dir / "tmp"

    # -- starting ---------------------------------------------------------------------------

    @classmethod
    def start(cls, config: LakeConfig, family: str, pipeline_id: str, *,
              params: Mapping[str, Any] | None = None, spec: Any = None,
              commit: str | None = None, git_dir: Path | None = None,
              runner: Runner | None = None, command: Sequence[str] | None = None,
              environment: Mapping[str, str] | None = None) -> Run:
        """Create the run directory and write a ``running`` run record."""
        from ulid import ULID

        _check_family(family)
        if not isinstance(pipeline_id, str) or not pipeline_id.strip():
            raise UsageError("pipeline id must be a non-empty string", field="pipeline_id")
        raw_params = dict(params or {})
        try:
            json.dumps(raw_params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"params must be JSON values: {exc}", field="params") from None
        spec_data, spec_path = _load_spec(config, spec, pipeline_id, raw_params)
        run_id = str(ULID())
        rel_dir = run_dir_rel(config, family, run_id)
        secrets: list[SecretFinding] = []
        clean_params, found = scrub_data(raw_params, "/params")
        secrets += found
        argv = env = None
        if command is not None:
            argv, found = scrub_argv(list(command))
            secrets += [_prefixed(f, "/command") for f in found]
        env_source = recorded_environment() | dict(environment or {})
        if env_source:
            env, found = scrub_env(env_source)
            secrets += [_prefixed(f, "/environment") for f in found]
        record = RunRecord(
            run_id=run_id, dataset_family=family, pipeline_id=pipeline_id,
            git_commit=commit or git_commit(git_dir or Path.cwd()), started_at=now_utc(),
            ended_at=None, status="running", runner=runner or current_runner(),
            command=argv, environment=env or None,
            software={"kfm-prov": __version__, "python": sys.version.split()[0]},
            extra={"process": {"pid": os.getpid()}},
        )
        run = cls(config=config, run_id=run_id, family=family, pipeline_id=pipeline_id,
                  params=clean_params, spec_hash=spec_hash(spec_data), spec_path=spec_path,
                  record=record, rel_dir=rel_dir, _secrets=secrets)
        for sub in ("artifacts", "logs", "tmp"):
            (run.dir / sub).mkdir(parents=True, exist_ok=False)
        run._write_receipt("run_record", record.to_dict())
        run.log(f"run {run_id} started: {family} / {pipeline_id}")
        return run

    # -- what the pipeline tells us ---------------------------------------------------------

    def use(self, path: str | os.PathLike[str], role: str = "primary") -> Path:
        """Declare an input (root-relative, or absolute inside the root); hashed now."""
        if role not in INPUT_ROLES:
            raise UsageError(f"input role must be one of {', '.join(INPUT_ROLES)}", field=role)
        rel = _input_rel(self.config, path)
        absolute = resolve_inside(self.config.root, rel, file=rel)
        if absolute.is_symlink() or not absolute.is_file():
            raise InputError("input does not exist or is not a regular file", file=rel)
        stat = stat_key(absolute.stat())
        digest = self._cache().digests([(rel, absolute)])[0]
        self._inputs[rel] = _Input(rel, role, digest, stat, absolute)
        self.log(f"input {rel} {digest[:19]}…", event="use", role=role)
        return absolute

    def output(self, name: str, role: str = "intermediate",
               sensitivity: str | None = None) -> Path:
        """Declare an output ``artifacts/<name>``; returns the path to write."""
        if role not in OUTPUT_ROLES:
            raise UsageError(f"output role must be one of {', '.join(OUTPUT_ROLES)}", field=role)
        if sensitivity is not None and sensitivity not in SENSITIVITIES:
            raise UsageError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}",
                             field="sensitivity")
        name = check_relative(name, field="output name")
        rel = f"{self.rel_dir}/artifacts/{name}"
        self._outputs[rel] = _Output(rel, role, sensitivity)
        path = self.config.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def gate(self, name: str, status: str, details: Mapping[str, Any] | None = None) -> None:
        """Record a validation gate of the pipeline's own (schema, geometry, license...)."""
        if status not in GATE_STATUSES:
            raise UsageError(f"gate status must be one of {', '.join(GATE_STATUSES)}",
                             field=name)
        clean, found = scrub_data(dict(details or {}), f"/gates/{name}/details")
        self._secrets += found
        self._gates.append(Gate(name, status, clean))

    def redact(self, source: str | os.PathLike[str], output: str, *,
               profile: Mapping[str, Any], sensitivity: str = "public",
               role: str = "product") -> Path:
        """Declare that ``output`` is a redacted form of ``source`` with a lower sensitivity.

        The redaction is recorded in the manifest and becomes an activity of its own in
        PROV; it is what lets a ``public`` product descend from sensitive data.
        """
        if sensitivity not in SENSITIVITIES:
            raise UsageError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}",
                             field="sensitivity")
        if not profile:
            raise UsageError("a redaction needs a profile saying what was done", field="profile")
        source_rel = _input_rel(self.config, source)
        if source_rel not in self._inputs and source_rel not in self._outputs:
            raise UsageError("redact a file the run used or produced", file=source_rel)
        path = self.output(output, role=role, sensitivity=sensitivity)
        self._redactions.append(_Redaction(source_rel, f"{self.rel_dir}/artifacts/{output}",
                                           dict(profile), sensitivity))
        return path

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """Append to ``logs/run.jsonl`` and ``logs/run.log``, secrets scrubbed."""
        if self._log_files is None:
            self._log_files = (open(self.logs / "run.jsonl", "a", encoding="utf-8"),  # noqa: SIM115
                               open(self.logs / "run.log", "a", encoding="utf-8"))  # noqa: SIM115
        text, found = scrub_text(str(message), "logs/run.log")
        clean_fields, found_fields = scrub_data(fields, "/fields") if fields else ({}, [])
        self._secrets += found + found_fields
        stamp = now_utc()
        structured, human = self._log_files
        structured.write(json.dumps({"time": stamp, "level": level, "message": text,
                                     **({"fields": clean_fields} if clean_fields else {})},
                                    ensure_ascii=False, default=str) + "\n")
        human.write(f"{stamp} {level.upper():5} {text}\n")
        structured.flush()
        human.flush()

    def note_secrets(self, findings: Sequence[SecretFinding]) -> None:
        """Secrets scrubbed elsewhere (command output) that the ``secrets`` gate must name."""
        self._secrets += findings

    # -- finishing --------------------------------------------------------------------------

    def finish(self, status: str, *, exit_code: int | None = None,
               error: BaseException | None = None) -> RecordedRun:
        """Hash, write the receipts, PROV and index entry. Returns what was recorded."""
        if error is not None:
            self.log(f"{type(error).__name__}: {error}", level="error")
        gates = list(self._gates)
        inputs, input_gate = self._recheck_inputs()
        outputs, output_gate = self._collect_outputs()
        gates += [input_gate, output_gate]
        if status == "success" and (input_gate.status == "fail" or output_gate.status == "fail"):
            status = "failed"
        ended = now_utc()
        self.log(f"run {self.run_id} ended: {status}")
        self._close_logs()
        if self._secrets:
            gates.append(Gate("secrets", "warn", {
                "redacted": [f.to_dict() for f in _unique(self._secrets)],
                "note": "values were replaced by [REDACTED] before anything was written"}))
        manifest = RunManifest(
            run_id=self.run_id, spec_hash=self.spec_hash, inputs=inputs, outputs=outputs,
            params=self.params, versions={"kfm-prov": __version__},
            redactions=[r.__dict__ for r in self._redactions] or None,
            extra={"spec_path": self.spec_path} if self.spec_path else {})
        report = ValidationReport(
            run_id=self.run_id, overall_status=_overall(gates), gates=gates,
            policy={"labels_emitted": sorted({o.extra["sensitivity"] for o in outputs
                                              if "sensitivity" in o.extra}),
                    "redactions_applied": bool(self._redactions)})
        self.record.status = status
        self.record.ended_at = ended
        self.record.exit_code = exit_code
        self._write_receipt("run_manifest", manifest.to_dict())
        self._write_receipt("validation_report", report.to_dict())
        self._write_receipt("run_record", self.record.to_dict())
        self.result = publish_run(self.config, self.rel_dir,
                                  RunReceipts(self.record, manifest, report))
        return self.result

    def _recheck_inputs(self) -> tuple[list[FileEntry], Gate]:
        entries, changed = [], []
        for item in sorted(self._inputs.values(), key=lambda i: i.rel):
            extra: dict[str, Any] = {}
            try:
                same = stat_key(item.path.stat()) == item.stat
                now = item.digest if same else hash_files([item.path])[0]
            except FileNotFoundError:
                now = None
            if now != item.digest:
                extra["changed_during_run"] = True
                changed.append({"path": item.rel, "digest_at_start": item.digest,
                                "digest_at_end": now})
            entries.append(FileEntry(item.rel, item.digest, item.role,
                                     item.path.stat().st_size if now else None,
                                     media_type(item.rel), extra))
        gate = Gate("inputs_unchanged", "fail" if changed else "pass",
                    {"changed": changed} if changed else {"inputs": len(entries)})
        return entries, gate

    def _collect_outputs(self) -> tuple[list[FileEntry], Gate]:
        """Declared outputs plus anything else written under ``artifacts/``."""
        declared = dict(self._outputs)
        for path in sorted(self.artifacts.rglob("*")):
            if path.is_file() or path.is_symlink():
                rel = f"{self.rel_dir}/artifacts/{path.relative_to(self.artifacts).as_posix()}"
                declared.setdefault(rel, _Output(rel, "intermediate", None))
        missing, refused, present = [], [], []
        for rel, out in sorted(declared.items()):
            path = self.config.root / rel
            if path.is_symlink():
                refused.append(rel)
            elif not path.is_file():
                missing.append(rel)
            else:
                present.append((out, path))
        digests = self._cache().digests([(out.rel, path) for out, path in present])
        entries = []
        for (out, path), digest in zip(present, digests, strict=True):
            extra = {"sensitivity": out.sensitivity} if out.sensitivity else {}
            entries.append(FileEntry(out.rel, digest, out.role, path.stat().st_size,
                                     media_type(out.rel), extra))
        problems: dict[str, Any] = {}
        if missing:
            problems["missing"] = missing
        if refused:
            problems["symlinks_refused"] = refused
        gate = Gate("outputs", "fail" if problems else "pass",
                    problems or {"outputs": len(entries)})
        return entries, gate

    def _write_receipt(self, kind: str, data: dict[str, Any]) -> None:
        findings = validate_data(kind, data, file=kind)
        if findings:  # our own receipts always validate; anything else is a bug here
            raise AssertionError(f"kfm-prov wrote an invalid {kind}: {findings[0].one_line()}")
        jsonio.write_json(self.dir / f"{kind}.json", data)

    def _cache(self) -> DigestCache:
        return DigestCache(self.config.dir("cache") / "digests.sqlite")

    def _close_logs(self) -> None:
        if self._log_files is not None:
            for handle in self._log_files:
                handle.close()
            self._log_files = None


@contextmanager
def capture(config: LakeConfig, family: str, pipeline_id: str, **options: Any) -> Iterator[Run]:
    """Run the block as a captured run; receipts are written however the block ends.

    An exception inside the block records the run as ``failed`` (``interrupted`` for
    Ctrl-C) and is re-raised. A block that ends normally but left a declared output
    unwritten (or changed an input) is recorded as ``failed`` and raises ``CheckFailed``.
    """
    run = Run.start(config, family, pipeline_id, **options)
    try:
        yield run
    except KeyboardInterrupt as exc:
        run.finish("interrupted", error=exc)
        raise
    except BaseException as exc:
        run.finish("failed", error=exc)
        raise
    result = run.finish("success")
    if result.status != "success":
        raise CheckFailed(f"run {run.run_id} failed its own checks (outputs written, inputs"
                          " unchanged)", file=f"{run.rel_dir}/validation_report.json",
                          hint=f"see kfm-prov show {run.run_id}")


def _check_family(family: str) -> None:
    import re

    if not isinstance(family, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", family):
        raise UsageError(f"family must be letters, digits, '_' or '-' (a directory name):"
                         f" {family!r}", field="family")


def _input_rel(config: LakeConfig, path: str | os.PathLike[str]) -> str:
    """Inputs are named relative to the root (as on the command line) or absolutely."""
    if Path(path).is_absolute():
        return to_relative(config.root, path)
    return check_relative(os.fspath(path), field="input")


def _load_spec(config: LakeConfig, spec: Any, pipeline_id: str,
               params: dict[str, Any]) -> tuple[Any, str | None]:
    """The spec to hash: a JSON-like value, or a JSON/YAML file inside the root."""
    if spec is None:
        return {"pipeline_id": pipeline_id, "params": params}, None
    if isinstance(spec, str | os.PathLike):
        rel = _input_rel(config, spec)
        path = resolve_inside(config.root, rel, file=rel)
        if path.suffix in (".yml", ".yaml"):
            return jsonio.read_yaml(path, display=rel), rel
        return jsonio.read_json(path, display=rel), rel
    return spec, None


def _overall(gates: Sequence[Gate]) -> str:
    statuses = {g.status for g in gates}
    if "fail" in statuses:
        return "fail"
    return "pass_with_waiver" if "waived" in statuses else "pass"


def _prefixed(finding: SecretFinding, prefix: str) -> SecretFinding:
    return SecretFinding(prefix + finding.location, finding.kind)


def _unique(findings: Sequence[SecretFinding]) -> list[SecretFinding]:
    return sorted(set(findings), key=lambda f: (f.location, f.kind))
