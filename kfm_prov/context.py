"""Where a run happens: the pipeline's code (repository, commit, file) and the runner.

These go into every run record; the gate later insists on a commit, so a pipeline outside
git is recorded as ``unknown`` rather than guessed. "Committed" means the file that ran is
in the commit (issue 12 §4): capture records the repository's remote (credentials
stripped), its checkout, the entry file and the git blob id of its bytes, and says at once
what is wrong; :func:`check_code` asks the repository again for the gate.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kfm_prov.store.receipts import CodeIdentity, Runner

UNKNOWN_COMMIT = "unknown"
_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI",
            "TF_BUILD", "TRAVIS", "BITBUCKET_BUILD_NUMBER", "TEAMCITY_VERSION")
_CLUSTER_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "KUBERNETES_SERVICE_HOST",
                 "AWS_BATCH_JOB_ID", "NOMAD_ALLOC_ID")
# Reproducibility-relevant variables worth keeping in a run record when present.
RECORDED_ENV = ("TZ", "LANG", "LC_ALL", "PYTHONHASHSEED", "SOURCE_DATE_EPOCH", "GITHUB_RUN_ID",
                "GITHUB_REPOSITORY", "GITHUB_SHA", "CI_PIPELINE_ID", "CI_JOB_ID",
                "SLURM_JOB_ID", "KFM_PIPELINE_VERSION")


def _git(directory: Path | str, *args: str, stdin: str | None = None) -> str | None:
    """``git -C directory ARGS``'s stdout, or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=60, check=False, input=stdin)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(directory: Path) -> str:
    """HEAD of the repository holding ``directory``, ``-dirty`` if it has local changes."""
    head = _git(directory, "rev-parse", "HEAD")
    if not head:
        return UNKNOWN_COMMIT
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if status else head


def strip_credentials(url: str) -> str:
    """A remote URL without user, password, query or fragment (where tokens hide).

    ``https://x-access-token:TOKEN@github.com/o/r.git`` → ``https://github.com/o/r.git``;
    scp-like ``git@host:o/r.git`` keeps its ``git@``, a login name and not a secret.
    """
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:  # scp-like or a local path: a "user:password@" prefix goes
        user, at, rest = url.partition("@")
        return rest if at and ":" in user else url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def remote_url(worktree: Path | str) -> str | None:
    """``origin``'s URL, else the first remote's, credentials stripped; None without one."""
    listing = _git(worktree, "config", "--get-regexp", r"^remote\..*\.url$") or ""
    urls: dict[str, str] = {}  # one git process: "remote.<name>.url <url>" lines
    for line in listing.splitlines():
        key, _, url = line.partition(" ")
        urls.setdefault(key[len("remote."):-len(".url")], url)
    if not urls:
        return None
    url = urls.get("origin") or next(iter(urls.values()))
    return strip_credentials(url) if url else None


_INLINE_CODE = frozenset({"-c", "-e", "--eval", "--command", "-m", "-E"})
_BINARY_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
                 b"MZ")


def entry_script(command: list[str] | tuple[str, ...], cwd: Path | None = None) -> Path | None:
    """The file of code a command runs: its first path-like argument that is a script file.

    ``./pipeline.sh``, ``python clean.py`` and ``/usr/bin/python3 -u clean.py`` give the
    script. A program found on PATH (``python``) and a compiled binary (an interpreter
    named by its path) are skipped; inline code (``-c``, ``-e``, ``-m``) ends the search:
    then the code is the command itself, which the run record keeps, and None is returned.
    """
    cwd = cwd or Path.cwd()
    for index, arg in enumerate(command):
        if arg in _INLINE_CODE:
            return None
        if not arg or arg.startswith("-") or (index == 0 and "/" not in arg):
            continue
        path = Path(arg) if Path(arg).is_absolute() else cwd / arg
        try:
            if not path.is_file():
                continue
            with open(path, "rb") as handle:
                head = handle.read(4)
        except OSError:
            continue
        if head.startswith(_BINARY_MAGIC):
            continue  # an interpreter: its script comes later
        return path.resolve()
    return None


def calling_module(skip: tuple[str, ...] = ()) -> Path | None:
    """The file of the first caller outside kfm-prov (and ``contextlib``): the pipeline."""
    import contextlib
    import sys

    package = Path(__file__).resolve().parent
    ignored = {Path(contextlib.__file__).resolve(), *(Path(s).resolve() for s in skip)}
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<"):
            path = Path(name).resolve()
            if path not in ignored and package not in path.parents:
                return path if path.is_file() else None
        frame = frame.f_back  # type: ignore[assignment]
    return None


def identify_code(commit: str | None, git_dir: Path | None,
                  entry: Path | None) -> tuple[str, CodeIdentity]:
    """The run record's ``git_commit`` and ``code``, with what is wrong with them.

    The commit is ``commit`` when given, else HEAD (``-dirty`` with tracked changes).
    ``unknown-commit``: no repository, or it lacks the commit. ``untracked-code``: the
    entry file is outside the checkout or not in the commit. ``dirty-commit``: its bytes
    differ from the commit's (then ``git_commit`` gets ``-dirty`` too).
    """
    directory = git_dir or Path.cwd()
    top = _git(directory, "rev-parse", "--show-toplevel")
    where = entry.resolve() if entry is not None else None
    if top is None:
        outside = ["unknown-commit"] + (["untracked-code"] if where is not None else [])
        return (commit or UNKNOWN_COMMIT), CodeIdentity(
            None, None, str(where) if where else None, None, outside)
    worktree = Path(top).resolve()
    named = commit or git_commit(worktree)
    base = named.removesuffix("-dirty")
    rel = blob = None
    inside = where is not None and worktree in where.parents
    if where is not None:
        rel = where.relative_to(worktree).as_posix() if inside else str(where)
    # One cat-file for the commit and the entry's blob at it (cost matters: every capture).
    queries = [f"{base}^{{commit}}"] + ([f"{base}:{rel}"] if inside else [])
    answers = (_git(worktree, "cat-file", "--batch-check=%(objectname) %(objecttype)",
                    stdin="\n".join(queries) + "\n") or "").splitlines()
    answers += ["missing"] * (len(queries) - len(answers))
    problems: list[str] = []
    if named == UNKNOWN_COMMIT or not answers[0].endswith(" commit"):
        problems.append("unknown-commit")
    if where is not None and not inside:
        problems.append("untracked-code")
    elif inside:
        blob = _git(worktree, "hash-object", "--", str(rel))
        if "unknown-commit" not in problems:
            if not answers[1].endswith(" blob"):
                problems.append("untracked-code")
            elif answers[1].split()[0] != blob:
                problems.append("dirty-commit")
    if named.endswith("-dirty") and "dirty-commit" not in problems:
        problems.append("dirty-commit")
    if "dirty-commit" in problems and not named.endswith("-dirty") and named != UNKNOWN_COMMIT:
        named += "-dirty"
    return named, CodeIdentity(remote_url(worktree), str(worktree), rel, blob, problems)


def check_code(git_commit: str, code: CodeIdentity | None) -> list[tuple[str, str]]:
    """:func:`check_codes` for one run."""
    return check_codes({"": (git_commit, code)})[""]


def check_codes(runs: Mapping[str, tuple[str, CodeIdentity | None]],
                ) -> dict[str, list[tuple[str, str]]]:
    """What the repository says now about each run's code: ``(reason code, message)`` pairs.

    For the gate, which trusts none of ``code.problems``: the checkout must still be the
    recorded repository, hold the commit, and hold the entry file at that commit with the
    blob id that ran. A run that names no repository cannot be checked: ``unknown-commit``.
    ``unknown`` and ``-dirty`` commits are the gate's own findings, not repeated here.
    Each checkout is asked once, in one ``git cat-file --batch-check``, however many runs
    name it (a closure of a thousand runs of one repository costs four git processes).
    """
    found: dict[str, list[tuple[str, str]]] = {key: [] for key in runs}
    by_worktree: dict[str, list[tuple[str, str, CodeIdentity]]] = {}
    for key, (git_commit, code) in runs.items():
        base = git_commit.removesuffix("-dirty")
        if git_commit == UNKNOWN_COMMIT:
            continue
        if code is None or code.worktree is None:
            found[key].append(("unknown-commit", f"commit {base} cannot be checked: the run"
                               " record names no repository (run_record.json v2 records"
                               " `code`)"))
            continue
        by_worktree.setdefault(code.worktree, []).append((key, base, code))
    for worktree, items in by_worktree.items():
        if not Path(worktree).is_absolute() or _git(worktree, "rev-parse",
                                                    "--show-toplevel") is None:
            for key, base, _ in items:
                found[key].append(("unknown-commit", f"commit {base} cannot be checked: no"
                                   f" git repository at {worktree}"))
            continue
        remote = remote_url(worktree) if any(c.repository for _, _, c in items) else None
        queries = sorted({q for _, base, code in items for q in _queries(base, code)})
        answers = (_git(worktree, "cat-file", "--batch-check=%(objectname) %(objecttype)",
                        stdin="\n".join(queries) + "\n") or "").splitlines()
        answers += ["missing"] * (len(queries) - len(answers))
        answer = dict(zip(queries, answers, strict=True))
        for key, base, code in items:
            found[key] += _judge(worktree, base, code, remote, answer)
    return found


def _queries(base: str, code: CodeIdentity) -> list[str]:
    queries = [f"{base}^{{commit}}"]
    if code.entry is not None and not Path(code.entry).is_absolute():
        queries.append(f"{base}:{code.entry}")
    return queries


def _judge(worktree: str, base: str, code: CodeIdentity, remote: str | None,
           answer: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if code.repository is not None and remote != code.repository:
        found.append(("unknown-commit", f"the checkout at {worktree} is no longer"
                      f" {code.repository}"))
    if not answer[f"{base}^{{commit}}"].endswith(" commit"):
        found.append(("unknown-commit", f"commit {base} is not in the repository at"
                      f" {worktree}"))
        return found
    if code.entry is None:
        return found
    entry = answer.get(f"{base}:{code.entry}")
    if entry is None:
        found.append(("untracked-code", f"the code that ran, {code.entry}, is outside the"
                      f" repository at {worktree}"))
    elif not entry.endswith(" blob"):
        found.append(("untracked-code", f"the code that ran, {code.entry}, is not in commit"
                      f" {base}"))
    elif entry.split()[0] != code.entry_blob:
        found.append(("dirty-commit", f"the code that ran, {code.entry}, differs from its"
                      f" version in commit {base}"))
    return found


def runner_type(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    explicit = env.get("KFM_RUNNER_TYPE")
    if explicit in ("ci", "local", "cluster"):
        return explicit
    if any(env.get(name) for name in _CI_VARS):
        return "ci"
    if any(env.get(name) for name in _CLUSTER_VARS):
        return "cluster"
    return "local"


def current_runner(kind: str | None = None) -> Runner:
    """The runner with its host and user; the user is dropped later unless configured."""
    try:
        user = os.getlogin()
    except OSError:
        import getpass

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = None
    return Runner(type=kind or runner_type(), host=socket.gethostname(), user=user)


def recorded_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {name: env[name] for name in RECORDED_ENV if name in env}
