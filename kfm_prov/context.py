"""Where a run happens: the pipeline's git commit and the kind of runner.

These go into every run record; the gate later insists on a commit, so a pipeline outside
git is recorded as ``unknown`` rather than guessed.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kfm_prov.store.receipts import Runner

UNKNOWN_COMMIT = "unknown"
_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI",
            "TF_BUILD", "TRAVIS", "BITBUCKET_BUILD_NUMBER", "TEAMCITY_VERSION")
_CLUSTER_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "KUBERNETES_SERVICE_HOST",
                 "AWS_BATCH_JOB_ID", "NOMAD_ALLOC_ID")
# Reproducibility-relevant variables worth keeping in a run record when present.
RECORDED_ENV = ("TZ", "LANG", "LC_ALL", "PYTHONHASHSEED", "SOURCE_DATE_EPOCH", "GITHUB_RUN_ID",
                "GITHUB_REPOSITORY", "GITHUB_SHA", "CI_PIPELINE_ID", "CI_JOB_ID",
                "SLURM_JOB_ID", "KFM_PIPELINE_VERSION")


def git_commit(directory: Path) -> str:
    """HEAD of the repository holding ``directory``, ``-dirty`` if it has local changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                                  text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return UNKNOWN_COMMIT
    status = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if status else head


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
