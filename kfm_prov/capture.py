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

from kfm_prov import __version__
from kfm_prov.config import INPUT_ROLES, OUTPUT_ROLES, SENSITIVITIES, LakeConfig
from kfm_prov.context import calling_module, current_runner, identify_code, recorded_environment
from kfm_prov.core import jsonio
from kfm_prov.core.crashpoints import crash_point
from kfm_prov.core.mediatypes import media_type
from kfm_prov.core.paths import (
    check_relative,
    resolve_inside,
    symlink_on_the_way,
    to_relative,
    unsafe_paths,
    unsafe_reason,
    walk_tree,
)
from kfm_prov.core.secrets import (
    SecretFinding,
    find_secrets,
    scrub_argv,
    scrub_data,
    scrub_env,
    scrub_text,
)
from kfm_prov.core.timeutil import now_utc
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import CheckFailed, InputError, KfmProvError, UsageError
from kfm_prov.record import RecordedRun, index_run, publish_run, run_dir_rel, write_run_prov
from kfm_prov.store.digests import DigestCache, hash_files, normalize_digest, spec_hash, stat_key
from kfm_prov.store.evidence import evidence_files
from kfm_prov.store.live import live_marker, live_markers
from kfm_prov.store.receipts import (
    FileEntry,
    Gate,
    RunManifest,
    Runner,
    RunReceipts,
    RunRecord,
    ValidationReport,
)
from kfm_prov.store.signing import sign_run, signing_key

GATE_STATUSES = ("pass", "fail", "warn", "skip", "waived")
_json_text = json.encoder.encode_basestring_ascii  # what json.dumps writes a string with


@dataclass
class _Input:
    rel: str
    role: str
    digest: str
    stat: tuple[int, ...]
    path: Path


#: Outputs declared so far, one JSON line each, while the run is running (see Run._declare).
DECLARED_FILE = ".declared-outputs.jsonl"


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
    _unsafe_names: list[str] = field(default_factory=list)
    _declared: IO[bytes] | None = None
    _made_dirs: set[Path] = field(default_factory=set)
    _artifacts_dir: Path | None = None
    _digest_cache: DigestCache | None = None
    result: RecordedRun | None = None

    # -- where things are -------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        """The run directory: receipts, ``artifacts/``, ``logs/``, ``tmp/``."""
        return self.config.root / self.rel_dir

    @property
    def artifacts(self) -> Path:
        """Where outputs go; ``output(name)`` is ``artifacts/<name>``."""
        return self.dir / "artifacts"

    @property
    def logs(self) -> Path:
        """``run.log`` and ``run.jsonl``; ``kfm-prov run`` adds the command's output."""
        return self.dir / "logs"

    @property
    def tmp(self) -> Path:
        """Scratch space of the run, never hashed nor published."""
        return self.dir / "tmp"

    # -- starting ---------------------------------------------------------------------------

    @classmethod
    def start(cls, config: LakeConfig, family: str, pipeline_id: str, *,
              params: Mapping[str, Any] | None = None, spec: Any = None,
              commit: str | None = None, git_dir: Path | None = None,
              runner: Runner | None = None, command: Sequence[str] | None = None,
              environment: Mapping[str, str] | None = None,
              entry: str | os.PathLike[str] | None = None) -> Run:
        """Create the run directory and write a ``running`` run record.

        ``entry`` is the file of code that runs: by default the module that called
        ``capture``; ``""`` when there is none (inline code in ``command``). It must be
        tracked and unchanged in the commit (``git_dir``'s HEAD, or ``commit``), or the
        gate refuses the products; capture records what is wrong and warns at the end.
        """
        from ulid import ULID

        _check_family(family)
        if not isinstance(pipeline_id, str) or not pipeline_id.strip():
            raise UsageError("pipeline id must be a non-empty string", field="pipeline_id")
        # The pipeline id is an identifier like any other text: scrubbed by the same rules.
        pipeline_id, pipeline_secrets = scrub_text(pipeline_id, "/pipeline_id")
        raw_params = dict(params or {})
        try:
            json.dumps(raw_params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"params must be JSON values: {exc}", field="params") from None
        spec_data, spec_path = _load_spec(config, spec, pipeline_id, raw_params)
        run_id = str(ULID())
        rel_dir = run_dir_rel(config, family, run_id)
        secrets: list[SecretFinding] = list(pipeline_secrets)
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
        if entry is None:
            entry_path = calling_module()
        else:
            entry_path = Path(entry) if os.fspath(entry) else None
        git_commit, code = identify_code(commit, Path(git_dir) if git_dir else None,
                                         entry_path)
        if find_secrets(code.to_dict()):
            raise UsageError(f"the location of the pipeline's code holds a secret:"
                             f" {scrub_text(str(code.worktree or code.entry))[0]}",
                             field="git_dir")
        record = RunRecord(
            run_id=run_id, dataset_family=family, pipeline_id=pipeline_id,
            git_commit=git_commit, started_at=now_utc(),
            ended_at=None, status="running", runner=runner or current_runner(),
            command=argv, environment=env or None,
            software={"kfm-prov": __version__, "python": sys.version.split()[0]},
            extra={"process": this_process()}, code=code,
        )
        signing_key(config)  # a configured key that cannot sign fails now, not at the end
        run = cls(config=config, run_id=run_id, family=family, pipeline_id=pipeline_id,
                  params=clean_params, spec_hash=spec_hash(spec_data), spec_path=spec_path,
                  record=record, rel_dir=rel_dir, _secrets=secrets)
        # The marker first: a process that dies from here on is found by `sweep_interrupted`
        # without scanning every run of the lake.
        jsonio.write_json(live_marker(config, run_id), {"run_dir": rel_dir,
                                                         "process": this_process()})
        for sub in ("artifacts", "logs", "tmp"):
            (run.dir / sub).mkdir(parents=True, exist_ok=False)
        run._write_receipt("run_record", record.to_dict())
        crash_point("capture-started")
        run.log(f"run {run_id} started: {family} / {pipeline_id}", event="start",
                spec_hash=run.spec_hash, params=clean_params,
                **({"spec_path": spec_path} if spec_path else {}))
        return run

    # -- what the pipeline tells us ---------------------------------------------------------

    def use(self, path: str | os.PathLike[str], role: str = "primary") -> Path:
        """Declare an input and return its absolute path to read; it is hashed now.

        ``path`` is root-relative, or absolute inside the root. ``role`` is ``primary``,
        ``auxiliary`` or ``config``. The file is checked again when the run ends: an input
        that changed meanwhile fails the run (gate ``inputs_unchanged``), since the
        recorded digest would no longer be what the run read.

        Raises ``UsageError`` for an unknown role; ``InputError`` when the path leaves the
        root, is a symlink or is not a regular file.
        """
        if role not in INPUT_ROLES:
            raise UsageError(f"input role must be one of {', '.join(INPUT_ROLES)}", field=role)
        rel = _input_rel(self.config, path)
        scrubbed, found = scrub_text(rel)
        if found:  # the manifest would carry it; rename the file
            raise UsageError("an input's file name holds a secret", file=scrubbed)
        absolute = resolve_inside(self.config.root, rel, file=rel)
        if absolute.is_symlink() or not absolute.is_file():
            raise InputError("input does not exist or is not a regular file", file=rel)
        stat = stat_key(absolute.stat())
        digest = self._cache().digests([(rel, absolute)])[0]
        self._inputs[rel] = _Input(rel, role, digest, stat, absolute)
        # Nothing to scrub: the path was scanned above, the role is one of ours and the
        # digest was computed here.
        self._write_log(f"input {rel} {digest[:19]}…", "info",
                        {"event": "use", "role": role, "path": rel, "digest": digest})
        return absolute

    def output(self, name: str, role: str = "intermediate",
               sensitivity: str | None = None) -> Path:
        """Declare an output ``artifacts/<name>`` and return the path to write.

        ``role="product"`` marks what ``kfm-prov promote`` may publish; ``sensitivity``
        labels it (``public``, ``restricted`` or ``sensitive-location``) for the gate. Outputs are
        hashed when the run ends; a declared output never written fails the run (gate
        ``outputs``), and files written under ``artifacts/`` without being declared are
        recorded as intermediate outputs.

        Raises ``UsageError`` for an unknown role or sensitivity; ``InputError`` for a
        name that is absolute, contains ``..``, a NUL or a newline.
        """
        if role not in OUTPUT_ROLES:
            raise UsageError(f"output role must be one of {', '.join(OUTPUT_ROLES)}", field=role)
        if sensitivity is not None and sensitivity not in SENSITIVITIES:
            raise UsageError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}",
                             field="sensitivity")
        name = check_relative(name, field="output name")
        scrubbed, found = scrub_text(name)
        if found:  # the manifest would carry it: refuse before anything is written
            raise UsageError("an output's file name holds a secret", file=scrubbed)
        rel = f"{self.rel_dir}/artifacts/{name}"
        self._outputs[rel] = _Output(rel, role, sensitivity)
        self._declare(rel, role, sensitivity)
        if self._artifacts_dir is None:
            self._artifacts_dir = self.config.root / self.rel_dir / "artifacts"
        path = self._artifacts_dir / name
        if "/" in name and path.parent not in self._made_dirs:  # artifacts/ itself exists
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
        return path

    def _declare(self, rel: str, role: str, sensitivity: str | None) -> None:
        """Note a declared output in ``DECLARED_FILE``, for a run whose process dies.

        Not a log line: a path in our own ``artifacts/``, a role and a label cannot hold a
        secret, so there is nothing to scrub, and the logs (which every evidence scan
        reads line by line) do not grow by a line per output. ``finish`` logs the count.
        One unbuffered write per output (what ``json.dumps`` would write; role and label
        are words of ours), so a SIGKILL right after still leaves it to the salvage.
        """
        if self._declared is None:
            self._declared = open(self.dir / DECLARED_FILE, "ab", buffering=0)  # noqa: SIM115
        label = f', "sensitivity": "{sensitivity}"' if sensitivity else ""
        self._declared.write(
            f'{{"path": {_json_text(rel)}, "role": "{role}"{label}}}\n'.encode())

    def gate(self, name: str, status: str, details: Mapping[str, Any] | None = None) -> None:
        """Record a validation gate of the pipeline's own (schema, geometry, license...).

        ``status`` is ``pass``, ``fail``, ``warn``, ``skip`` or ``waived``; one ``fail``
        makes the run's validation report fail, so the promotion gate refuses its
        products. ``details`` are stored in ``validation_report.json`` with secrets
        replaced by ``[REDACTED]``.

        Raises ``UsageError`` for an unknown status.
        """
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
        PROV; it is what lets a ``public`` product descend from sensitive data (without it
        the gate refuses with ``sensitivity-downgrade``). ``profile`` says what was done,
        e.g. ``{"method": "snap-to-grid", "cell_m": 5000}``. Returns the path to write,
        as ``output`` does.

        Raises ``UsageError`` for an unknown sensitivity, an empty profile, or a
        ``source`` the run neither used nor produced.
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
        text, found = scrub_text(str(message), "logs/run.log")
        clean_fields, found_fields = scrub_data(fields, "/fields") if fields else ({}, [])
        self._secrets += found + found_fields
        self._write_log(text, level, clean_fields)

    def _write_log(self, text: str, level: str, clean_fields: dict[str, Any]) -> None:
        """Append one line that holds no secret (scrubbed by the caller) to both logs."""
        if self._log_files is None:
            self._log_files = (open(self.logs / "run.jsonl", "a", encoding="utf-8"),  # noqa: SIM115
                               open(self.logs / "run.log", "a", encoding="utf-8"))  # noqa: SIM115
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
        if self._outputs:
            self.log(f"{len(self._outputs)} output(s) declared", event="outputs",
                     count=len(self._outputs))
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
        self.result = _write_run(self.config, self.rel_dir,
                                 RunReceipts(self.record, manifest, report))
        (self.dir / DECLARED_FILE).unlink(missing_ok=True)  # the manifest says it all now
        if status == "success":
            warn_code(self.record)
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
        """Declared outputs plus anything else written under ``artifacts/``.

        One ``scandir`` walk of ``artifacts/`` finds its files and symlinks (symlinked
        directories are not entered, as with ``rglob``). A file the walk reached through
        real directories, below an ``artifacts/`` that resolves to itself, has no symlink
        on the way; every other declared output is checked on its own. For 10,000
        outputs this is a tenth of the time of resolving each path.
        """
        root = os.fspath(self.config.root)
        artifacts_rel = f"{self.rel_dir}/artifacts"
        files, links = walk_tree(self.artifacts, artifacts_rel)
        unsafe = unsafe_paths((*files, *links))
        if unsafe:  # no receipt can hold these names: refused, and the run fails
            files, links = files.difference(unsafe), links.difference(unsafe)
            self._unsafe_names = [_shown(rel) for rel in unsafe]
        declared = dict(self._outputs)
        secret_names = []  # a file name holding a secret must not reach the manifest
        for rel in sorted(files.union(links).difference(self._outputs)):
            # Found, not declared: its name was not scanned yet (``output`` scans those).
            scrubbed, found = scrub_text(rel, "/outputs")
            if found:
                secret_names.append(scrubbed)
                self._secrets += found
            else:
                declared[rel] = _Output(rel, "intermediate", None)
        base = self.config.root.resolve() / artifacts_rel
        clean = bool(files) and base.resolve() == base
        missing, refused, present = [], [], []
        for rel, out in sorted(declared.items()):
            if clean and rel in files:
                present.append(out)
            elif symlink_on_the_way(self.config.root, rel):
                refused.append(rel)
            elif not (self.config.root / rel).is_file():
                missing.append(rel)
            else:
                present.append(out)
        # Outputs of a new run directory cannot be in the digest cache: no lookup.
        hashed = self._cache().digests_and_stats([(out.rel, f"{root}/{out.rel}")
                                                  for out in present], new=True)
        entries = []
        kinds: dict[str, str] = {}
        for out, (digest, key) in zip(present, hashed, strict=True):
            extra = {"sensitivity": out.sensitivity} if out.sensitivity else {}
            entries.append(FileEntry(out.rel, digest, out.role, key[2],
                                     _media_type(out.rel, kinds), extra))
        problems: dict[str, Any] = {}
        if self._unsafe_names:
            problems["unsafe_names_refused"] = self._unsafe_names
        if missing:
            problems["missing"] = missing
        if refused:
            problems["symlinks_refused"] = refused
        if secret_names:
            problems["names_holding_secrets"] = secret_names
        gate = Gate("outputs", "fail" if problems else "pass",
                    problems or {"outputs": len(entries)})
        return entries, gate

    @property
    def unsafe_names(self) -> list[str]:
        """Files under ``artifacts/`` refused for their names (shown escaped)."""
        return list(self._unsafe_names)

    def failure(self) -> CheckFailed:
        """The error for a run that ended well but failed its own checks."""
        if self._unsafe_names:
            return CheckFailed(f"refused file name(s) no receipt can hold:"
                               f" {', '.join(self._unsafe_names)}; run {self.run_id} is"
                               " recorded as failed", file=f"{self.rel_dir}/artifacts",
                               hint="name outputs with printable UTF-8 characters and '/'"
                                    " separators")
        return CheckFailed(f"run {self.run_id} failed its own checks (outputs written, inputs"
                           " unchanged)", file=f"{self.rel_dir}/validation_report.json",
                           hint=f"see kfm-prov show {self.run_id}")

    def _write_receipt(self, kind: str, data: dict[str, Any]) -> None:
        _write_receipt(self.dir, kind, data)

    def _cache(self) -> DigestCache:
        """The digest cache, one connection for the whole run (closed by ``finish``)."""
        if self._digest_cache is None:
            self._digest_cache = DigestCache(self.config.dir("cache") / "digests.sqlite",
                                             self.config.root, keep_open=True)
        return self._digest_cache

    def _close_logs(self) -> None:
        if self._digest_cache is not None:
            self._digest_cache.close()
        if self._log_files is not None:
            for handle in self._log_files:
                handle.close()
            self._log_files = None
        if self._declared is not None:
            self._declared.close()
            self._declared = None


def code_warning(record: RunRecord) -> str | None:
    """One line saying why the gate will refuse this run's code, or None."""
    code = record.code
    if code is None or not code.problems:
        return None
    what = {"unknown-commit": f"commit {record.git_commit.removesuffix('-dirty')} is not in"
                              f" the repository{f' at {code.worktree}' if code.worktree else ''}",
            "untracked-code": f"{code.entry} is "
                              + ("outside the repository" if code.entry and Path(code.entry)
                                 .is_absolute() else "untracked (not in the commit)"),
            "dirty-commit": f"{code.entry or 'the checkout'} has uncommitted changes"}
    details = "; ".join(what[p] for p in code.problems if p in what)
    return (f"kfm-prov: warning: run {record.run_id}: {details}"
            f" ({', '.join(code.problems)}); the gate will refuse its products")


def warn_code(record: RunRecord) -> None:
    """Say at capture what the gate would refuse later, on stderr."""
    line = code_warning(record)
    if line is not None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _shown(rel: str) -> str:
    """A path as text that fits on one line and encodes as UTF-8 (``repr`` escapes)."""
    return repr(rel)[1:-1]


def _media_type(rel: str, known: dict[str, str]) -> str:
    """``media_type``, computed once per chain of suffixes (all it depends on)."""
    name = rel.rpartition("/")[2]
    dot = name.find(".", 1)
    suffixes = name[dot:] if dot > 0 else ""
    if suffixes not in known:
        known[suffixes] = media_type(f"x{suffixes}")
    return known[suffixes]


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
        raise run.failure()


def _write_receipt(run_dir: Path, kind: str, data: dict[str, Any]) -> None:
    findings = validate_data(kind, data, file=kind)
    if findings:  # our own receipts always validate; anything else is a bug here
        raise AssertionError(f"kfm-prov wrote an invalid {kind}: {findings[0].one_line()}")
    jsonio.write_json(run_dir / f"{kind}.json", data)


def _write_run(config: LakeConfig, rel_dir: str, receipts: RunReceipts) -> RecordedRun:
    """The end of every captured run, in crash-safe order.

    Manifest, report and ``prov.json`` first, the run record last: until it is replaced,
    the record says ``running`` and a crash is found by ``sweep_interrupted``; once it
    says how the run ended, every receipt it rests on is durable. Then the index, then
    the live marker goes.
    """
    run_dir = config.root / rel_dir
    crash_point("capture-before-receipts")
    _write_receipt(run_dir, "run_manifest", receipts.manifest.to_dict())
    _write_receipt(run_dir, "validation_report", receipts.report.to_dict())
    raw_rows = write_run_prov(config, rel_dir, receipts)
    crash_point("capture-before-record")
    _write_receipt(run_dir, "run_record", receipts.record.to_dict())
    sign_run(config, rel_dir, receipts, evidence_files(config, rel_dir))
    crash_point("capture-before-index")
    result = index_run(config, rel_dir, receipts, raw_rows)
    crash_point("capture-before-unmark")
    live_marker(config, receipts.record.run_id).unlink(missing_ok=True)
    return result


# --- runs whose process died ---------------------------------------------------------------

def this_process() -> dict[str, Any]:
    """What identifies the capturing process later: pid, host, and its start time."""
    import socket

    process: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}
    start = _process_start(os.getpid())
    if start is not None:
        process["start"] = start
    return process


def _process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return None if fields[0] == "Z" else int(fields[19])
    except (IndexError, ValueError):
        return None


def process_alive(process: Any) -> bool | None:
    """True or False for a process of this host; None when it cannot be told (elsewhere)."""
    import socket

    if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
        return None
    if process["pid"] <= 0 or isinstance(process["pid"], bool):
        return None
    if process.get("host") != socket.gethostname():
        return None
    pid = process["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return None
    start = _process_start(pid)
    if Path("/proc/self/stat").exists():  # Linux: a zombie or a reused pid is not the run
        return start is not None and process.get("start") in (None, start)
    return True


def sweep_interrupted(config: LakeConfig, *, full: bool = False) -> list[str]:
    """Record as ``interrupted`` every run whose capturing process is gone.

    Looks at the live markers (cheap; every command does it) or, with ``full``, at every
    run directory (``index rebuild``). A run still marked ``running`` gets valid receipts
    that say ``interrupted`` (never ``success``), its ``prov.json`` and an index entry; a
    run that ended but died before it was indexed is indexed. Runs of other hosts, or of
    processes still alive, are left alone. Returns the run ids it finished.
    """
    from filelock import FileLock, Timeout

    from kfm_prov.store.rebuild import iter_run_dirs

    markers = live_markers(config)
    if not markers and not full:
        return []
    lock = FileLock(str(config.dir("cache") / "locks" / "sweep.lock"))
    (config.dir("cache") / "locks").mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=0 if not full else 60)
    except Timeout:
        return []  # another process is sweeping
    try:
        done = []
        seen: set[str] = set()
        for marker in markers:
            try:
                info = jsonio.read_json(marker, display=marker.name)
                rel_dir = check_relative(info["run_dir"])
            except (InputError, KeyError, TypeError):
                marker.unlink(missing_ok=True)
                continue
            seen.add(rel_dir)
            if process_alive(info.get("process")) is not False:
                continue
            if ((config.root / rel_dir / "run_record.json").is_file()
                    and _finish_safely(config, rel_dir)):
                done.append(marker.stem)
            marker.unlink(missing_ok=True)
        if full:
            for rel_dir in iter_run_dirs(config):
                if rel_dir not in seen and _finish_safely(config, rel_dir, only_running=True):
                    done.append(rel_dir.rsplit("/", 1)[-1])
        return done
    finally:
        lock.release()


def _finish_safely(config: LakeConfig, rel_dir: str, *, only_running: bool = False) -> bool:
    """``_finish_dead_run``, but one run directory it cannot repair never stops the sweep
    (every command sweeps): that run stays as it is, for ``validate`` and ``index rebuild``
    to report."""
    try:
        return _finish_dead_run(config, rel_dir, only_running=only_running)
    except (KfmProvError, OSError, ValueError):
        return False


def _finish_dead_run(config: LakeConfig, rel_dir: str, *, only_running: bool = False) -> bool:
    """Finish the bookkeeping of a run whose process died; False if there was none to do."""
    from kfm_prov.store.receipts import load_run_receipts

    run_dir = config.root / rel_dir
    try:
        data = jsonio.read_json(run_dir / "run_record.json", display=f"{rel_dir}/run_record.json")
    except InputError:
        return False
    if not isinstance(data, dict) or validate_data("run_record", data, file=rel_dir):
        return False  # not ours to repair: `kfm-prov validate` names what is wrong
    record = RunRecord.from_dict(data)
    if record.status != "running":
        if only_running:
            return False
        try:  # it ended; the crash came between the run record and the index
            publish_run(config, rel_dir, load_run_receipts(run_dir, display=rel_dir))
        except InputError:
            return False
        return True
    process = record.extra.get("process")
    if not isinstance(process, dict) or process_alive(process) is not False:
        return False
    _append_log(run_dir, f"run {record.run_id} interrupted: its process"
                f" {process.get('pid')} on {process.get('host')} is gone")
    manifest = _salvaged_manifest(config, rel_dir, record.run_id)
    gate = Gate("interrupted", "fail", {"reason": "the capturing process died before the"
                                        " run ended", "process": process})
    record.status = "interrupted"
    record.ended_at = max(now_utc(), record.started_at)
    record.exit_code = None
    report = ValidationReport(run_id=record.run_id, overall_status="fail", gates=[gate])
    _write_run(config, rel_dir, RunReceipts(record, manifest, report))
    return True


def _append_log(run_dir: Path, message: str) -> None:
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    stamp = now_utc()
    with open(logs / "run.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": stamp, "level": "error", "message": message}) + "\n")
    with open(logs / "run.log", "a", encoding="utf-8") as handle:
        handle.write(f"{stamp} ERROR {message}\n")


def _salvaged_manifest(config: LakeConfig, rel_dir: str, run_id: str) -> RunManifest:
    """What a dead run used and left: inputs from its log, files from its artifacts/."""
    from kfm_prov.store.receipts import read_receipt

    run_dir = config.root / rel_dir
    data, findings = read_receipt(run_dir / "run_manifest.json", "run_manifest",
                                  display=f"{rel_dir}/run_manifest.json")
    if data is not None and not findings and data.get("run_id") == run_id:
        return RunManifest.from_dict(data)  # it died after writing its manifest
    inputs: dict[str, FileEntry] = {}
    roles: dict[str, tuple[str, str | None]] = {}
    start: dict[str, Any] = {}
    declared = [{"fields": {"event": "output", **e}} for e in _log_events(run_dir / DECLARED_FILE)]
    for event in [*_log_events(run_dir / "logs" / "run.jsonl"), *declared]:
        fields = event.get("fields")
        if isinstance(fields, dict) and fields.get("event") == "start":
            start = fields
        if not isinstance(fields, dict) or not isinstance(fields.get("path"), str):
            continue
        if fields.get("event") == "use" and isinstance(fields.get("digest"), str):
            try:
                rel = check_relative(fields["path"])
                digest = normalize_digest(fields["digest"])
            except InputError:
                continue
            role = str(fields["role"]) if fields.get("role") in INPUT_ROLES else "primary"
            inputs[rel] = FileEntry(rel, digest, role, None, media_type(rel), {})
        elif fields.get("event") == "output":
            role = str(fields["role"]) if fields.get("role") in OUTPUT_ROLES else "intermediate"
            label = fields.get("sensitivity")
            roles[fields["path"]] = (role, str(label) if label in SENSITIVITIES else None)
    artifacts = run_dir / "artifacts"
    names = sorted(walk_tree(artifacts, f"{rel_dir}/artifacts")[0]) if artifacts.is_dir() else []
    unsafe = [rel for rel in names if unsafe_reason(rel) is not None]
    if unsafe:  # no receipt can hold these names; the run is interrupted (failed) anyway
        _append_log(run_dir, "file name(s) no receipt can hold, left out: "
                    + ", ".join(_shown(rel) for rel in unsafe))
    found = [config.root / rel for rel in names if rel not in unsafe]
    outputs = []
    for path, digest in zip(found, hash_files(found), strict=True):
        rel = path.relative_to(config.root).as_posix()
        role, label = roles.get(rel, ("intermediate", None))
        outputs.append(FileEntry(rel, digest, role, path.stat().st_size, media_type(rel),
                                 {"sensitivity": label} if label else {}))
    params: dict[str, Any] = start["params"] if isinstance(start.get("params"), dict) else {}
    try:
        spec = normalize_digest(start.get("spec_hash"))
    except InputError:
        spec = spec_hash(None)
    return RunManifest(run_id=run_id, spec_hash=spec, inputs=list(inputs.values()),
                       outputs=outputs, params=params, versions={"kfm-prov": __version__},
                       extra={"salvaged": "receipts rebuilt from the log and artifacts/"
                                         " after the capturing process died"})


def _log_events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError:
        return
    with handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line of a killed process may be cut short
            if isinstance(event, dict):
                yield event


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
