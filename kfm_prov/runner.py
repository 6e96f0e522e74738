"""``kfm-prov run -- CMD``: any command, in any language, as a captured run.

Inputs are hashed before the command starts and re-checked after it ends; its stdout and
stderr are shown as they come and kept (scrubbed) in ``logs/``; its exit code becomes the
run's status and ours. Ctrl-C or SIGTERM is passed on to the command and the run is
recorded as ``interrupted``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

from kfm_prov.capture import Run, _input_rel
from kfm_prov.config import SIGNING_KEY_ENV, LakeConfig
from kfm_prov.context import current_runner, entry_script
from kfm_prov.core.paths import resolve_inside
from kfm_prov.core.secrets import LineScrubber
from kfm_prov.errors import InputError, UsageError
from kfm_prov.record import RecordedRun


def run_command(config: LakeConfig, family: str, pipeline_id: str, command: Sequence[str], *,
                inputs: Sequence[tuple[str, str]] = (),
                outputs: Sequence[tuple[str, str] | tuple[str, str, str | None]] = (),
                params: Mapping[str, Any] | None = None, spec: str | None = None,
                commit: str | None = None, git_dir: Path | None = None,
                runner_type: str | None = None, echo: bool = True,
                cwd: str | os.PathLike[str] | None = None) -> tuple[RecordedRun, int]:
    """Run ``command`` as a captured run; returns what was recorded and the exit code to use.

    The command runs in the lake root, where ``inputs`` are read from too, so the same
    relative path means the same file to kfm-prov and to the command wherever the user
    stands; ``cwd`` (relative to the root, or absolute) runs it elsewhere. It sees the
    variables of ``command_env``.

    ``outputs`` are ``(name, role)`` or ``(name, role, sensitivity)``. The spec file is
    identified by its hash and path in the manifest, not used as an input: it lives with
    the pipeline's code, which the git commit already pins. Inputs are checked before
    anything is created, so a typo leaves no run behind. The command's script (its first
    path-like argument that is a script file, :func:`~kfm_prov.context.entry_script`) is
    the code whose commit the run record pins.
    """
    if not command:
        raise UsageError("no command given after --", field="CMD")
    workdir = config.root if cwd is None else config.root / Path(cwd).expanduser()
    if not workdir.is_dir():
        raise InputError("working directory does not exist or is not a directory",
                         file=str(cwd), field="--cwd")
    for path, _ in inputs:
        rel = _input_rel(config, path)
        absolute = resolve_inside(config.root, rel, file=rel)
        if absolute.is_symlink() or not absolute.is_file():
            raise InputError("input does not exist or is not a regular file", file=rel,
                             field="--input")
    entry = entry_script(list(command))
    run = Run.start(config, family, pipeline_id, params=params, spec=spec, commit=commit,
                    git_dir=git_dir, runner=current_runner(runner_type), command=command,
                    entry=entry or "")
    try:
        for path, role in inputs:
            run.use(path, role)
        for output in outputs:
            run.output(*output)
    except BaseException as exc:
        run.finish("failed", error=exc)
        raise
    code, interrupted, not_started = _execute(run, command, echo=echo, cwd=workdir)
    status = "interrupted" if interrupted else ("success" if code == 0 else "failed")
    result = run.finish(status, exit_code=code)
    if run.unsafe_names:  # recorded as failed; say which file, whatever the command said
        raise run.failure()
    if result.status != "success":
        result = replace(result, reason=failure_reason(
            run, code, interrupted=interrupted, not_started=not_started))
    if code == 0 and result.status != "success":
        return result, 1
    return result, code if code >= 0 else 128 - code


def failure_reason(run: Run, code: int, *, interrupted: bool = False,
                   not_started: str | None = None) -> str:
    """One line saying why a run failed: the command, then its own checks.

    Read from the validation report just written, so it says what the receipts say.
    """
    from kfm_prov.core import jsonio

    reasons = []
    if not_started:
        reasons.append(not_started)
    elif interrupted:
        reasons.append("interrupted")
    elif code < 0:
        reasons.append(f"the command was killed by {signal.Signals(-code).name}")
    elif code > 0:
        reasons.append(f"the command exited with {code}")
    try:
        report = jsonio.read_json(run.dir / "validation_report.json")
        gates = [g for g in report.get("gates", []) if g.get("status") == "fail"]
    except (InputError, AttributeError):
        gates = []
    artifacts = f"{run.rel_dir}/artifacts/"
    for gate in gates:
        details = gate.get("details") or {}
        if gate.get("name") == "outputs" and details.get("missing"):
            names = [m.removeprefix(artifacts) for m in details["missing"]]
            reasons.append(f"declared output(s) never written: {', '.join(names)}")
        elif gate.get("name") == "outputs" and details.get("symlinks_refused"):
            reasons.append("output(s) behind a symlink refused: "
                           + ", ".join(details["symlinks_refused"]))
        elif gate.get("name") == "inputs_unchanged":
            changed = [c.get("path", "?") for c in details.get("changed", [])]
            reasons.append(f"input(s) changed during the run: {', '.join(changed)}")
        else:
            reasons.append(f"gate {gate.get('name')!r} failed")
    return "; ".join(reasons) or "see kfm-prov show " + run.run_id


#: What the command finds in its environment, besides the caller's (``run --help``).
COMMAND_ENV = {
    "KFM_PROV_ROOT": "the lake root (absolute); the command's working directory unless --cwd",
    "KFM_RUN_ID": "the run's id (a ULID)",
    "KFM_RUN_DIR": "the run's directory (absolute): <runs>/<family>/<run id>",
    "KFM_ARTIFACTS_DIR": "where to write the declared outputs (absolute): <run dir>/artifacts",
}


def command_env(run: Run) -> dict[str, str]:
    """The variables of ``COMMAND_ENV`` for ``run``."""
    return {"KFM_PROV_ROOT": str(run.config.root), "KFM_RUN_ID": run.run_id,
            "KFM_RUN_DIR": str(run.dir), "KFM_ARTIFACTS_DIR": str(run.artifacts)}


def _execute(run: Run, command: Sequence[str], *, echo: bool,
             cwd: Path) -> tuple[int, bool, str | None]:
    """Run the command; its exit code, whether it was interrupted, and why it could not
    start (None when it did)."""
    env = dict(os.environ)
    env.pop(SIGNING_KEY_ENV, None)  # the pipeline has no business with the signing key
    env.update(command_env(run))
    where = cwd.resolve()
    root = run.config.root.resolve()
    shown = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
    run.log("command: " + " ".join(command) + f" (in {shown if shown != '.' else 'the root'})",
            event="exec")
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, cwd=cwd)
    except OSError as exc:
        run.log(f"could not start the command: {exc.strerror}", level="error")
        if isinstance(exc, FileNotFoundError):
            return 127, False, f"command not found: {command[0]}"
        if isinstance(exc, PermissionError):
            return 126, False, f"command not executable: {command[0]}"
        return 127, False, f"could not start {command[0]}: {exc.strerror}"
    interrupted = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        process.send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, forward)
    pumps = [threading.Thread(target=_pump, args=(process.stdout, run, "stdout",
                                                  sys.stdout if echo else None)),
             threading.Thread(target=_pump, args=(process.stderr, run, "stderr",
                                                  sys.stderr if echo else None))]
    try:
        for pump in pumps:
            pump.start()
        code = process.wait()
        for pump in pumps:
            pump.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code < 0:
        run.log(f"command was killed by signal {-code} ({signal.Signals(-code).name})",
                level="error")
    else:
        run.log(f"command exited with {code}")
    return code, interrupted.is_set(), None


def _pump(stream: IO[bytes] | None, run: Run, name: str, echo: IO[str] | None) -> None:
    """Copy one output stream to the terminal as is and to ``logs/<name>.log`` scrubbed."""
    if stream is None:
        return
    scrubber = LineScrubber()  # one per stream: a private key spans several lines
    with open(run.logs / f"{name}.log", "w", encoding="utf-8") as log:
        for number, raw in enumerate(iter(stream.readline, b""), start=1):
            text = raw.decode("utf-8", errors="replace")
            if echo is not None:
                echo.write(text)
                echo.flush()
            clean, found = scrubber.scrub(text, f"logs/{name}.log line {number}")
            if found:
                run.note_secrets(found)
            log.write(clean)
    stream.close()
