"""``kfm-prov demo``: build an example lake and run the whole flow on it, end to end.

Four families, each captured a different way: ``glo_land_patents`` and ``khri_sites`` with
the Python API (a three-run chain, and a redaction), ``nhgis_tracts`` with ``kfm-prov run``
around a shell and awk command, ``kansas_memory`` by a shell pipeline that writes its own
receipts, taken in by ``kfm-prov record``. Then the gate: four promotions, one refusal
(precise archaeological sites labelled public), a second version, a trace, and the
audit site (``kfm-prov site``) whose path it prints last.

The pipelines run the way a user's would: as separate processes, from a git repository
(``DIR/pipelines``) that the demo creates and commits, so the gate finds a real commit
whether kfm-prov came from a clone, an sdist or a wheel. The sources come from the
package (``kfm_prov/examples``; ``examples/`` in a clone points there).

Mutates only ``DIR`` and ``DIR-demo-key/`` beside it: a demo signing key, kept outside the
lake root as every signing key must be, that signs each run and promotion. A ``DIR`` that
holds a previous demo lake (it has the marker file ``.kfm-prov-demo``) is replaced; any
other non-empty ``DIR`` is refused; a previous demo key is reused.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfm_prov.errors import CheckFailed, InputError, KfmProvError
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult

if TYPE_CHECKING:
    from kfm_prov.examples.data import Capture

MARKER = ".kfm-prov-demo"
PIPELINES = "pipelines"
# Parameters of the example pipelines whose values PROV documents may publish.
DEMO_PUBLIC_PARAMS = ["crs", "date_formats", "decimals", "grid", "grid_degrees", "group_by",
                      "join_key", "label", "year"]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "kfm-prov demo", "GIT_AUTHOR_EMAIL": "demo@example.org",
                "GIT_COMMITTER_NAME": "kfm-prov demo", "GIT_COMMITTER_EMAIL": "demo@example.org",
                # a fixed date makes the same example sources the same commit everywhere
                "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
                "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00"}
GLO_PRODUCT = "parcels.geojson"
SITE_DIR = "site"  # the audit site, beside data/ in the demo lake

Echo = Callable[[str], None]


@dataclass
class Refusal:
    """What the gate said when it refused a promotion."""

    run_id: str
    product: str
    codes: list[str]
    messages: list[str]
    receipt: str | None
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DemoResult:
    """Where everything the demo made is, relative to ``root``."""

    root: Path
    commit: str
    runs: dict[str, list[str]] = field(default_factory=dict)  # family → run ids, in order
    promotions: list[PromotionResult] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    key: dict[str, str] = field(default_factory=dict)  # the demo signing key: paths, id
    traced: str | None = None  # the product traced at the end
    trace: str | None = None  # its trace, when `kfm-prov trace` exists
    verified: str | None = None  # what `kfm-prov verify` said, when it exists
    site: str | None = None  # the audit site's index.html, relative to root

    @property
    def latest(self) -> PromotionResult:
        """The last promotion: glo_land_patents v2, whose lineage the demo traces."""
        return self.promotions[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "commit": self.commit, "runs": self.runs,
                "promotions": [p.to_dict() for p in self.promotions],
                "refusals": [r.to_dict() for r in self.refusals], "key": self.key,
                "traced": self.traced, "trace": self.trace, "verified": self.verified,
                "site": self.site}


def run_demo(directory: str | os.PathLike[str], *, echo: Echo = print) -> DemoResult:
    """Build the example lake in ``directory`` and run every step, narrating on ``echo``."""
    if shutil.which("git") is None:
        raise InputError("the demo needs git: pipelines must be committed before their"
                         " products can be promoted", hint="install git and rerun")
    root, replaced = prepare(Path(directory))
    return _Demo(root, echo).run(replaced)


def prepare(directory: Path) -> tuple[Path, bool]:
    """An empty ``directory`` for the demo, replacing a previous demo lake; never anything else.

    Returns the resolved path and whether a previous demo lake was removed.
    """
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", file=str(directory))
    replaced = False
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            raise InputError("not empty, and not a lake made by kfm-prov demo",
                             file=str(directory),
                             hint="give the demo a new or empty directory")
        here = Path.cwd().resolve()
        if here == directory.resolve() or directory.resolve() in here.parents:
            raise InputError("the demo would replace the directory you are in",
                             file=str(directory), hint="run it from outside that directory")
        _make_dirs_writable(directory)
        shutil.rmtree(directory)
        replaced = True
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    (root / MARKER).write_text("Made by `kfm-prov demo`, which replaces this directory when"
                               " it runs again.\n", encoding="utf-8")
    return root, replaced


def _make_dirs_writable(directory: Path) -> None:
    """So that read-only promoted versions can be removed with the rest of the demo lake."""
    for dirpath, _, _ in os.walk(directory):
        mode = os.stat(dirpath).st_mode
        if not mode & stat.S_IWUSR:
            os.chmod(dirpath, mode | stat.S_IWUSR)


def _init_with_metadata(root: Path) -> Lake:
    """A new lake whose config describes the demo's families (title, coverage...)."""
    from kfm_prov.config import CONFIG_NAME
    from kfm_prov.core import jsonio
    from kfm_prov.examples.data import FAMILY_METADATA

    Lake.init(root)
    config = root / CONFIG_NAME
    jsonio.atomic_write(config, config.read_bytes() + FAMILY_METADATA.encode("utf-8"))
    return Lake.open(root)


class _Demo:
    """The demo's steps, in order; each narrates what it did."""

    def __init__(self, root: Path, echo: Echo) -> None:
        self.root = root
        self.echo = echo
        self.lake = _init_with_metadata(root)
        # The examples' parameters are not secret: publish their values in PROV (every
        # other lake publishes digests until it says which are safe, issue 12 §6).
        config = root / "kfm-prov.toml"
        config.write_text(config.read_text(encoding="utf-8").replace(
            "public_params = []", "public_params = " + json.dumps(DEMO_PUBLIC_PARAMS)),
            encoding="utf-8")
        self.lake = Lake.open(root)
        self.pipelines = root / PIPELINES
        self.result = DemoResult(root=root, commit="")
        self.env = _child_env(root)

    def run(self, replaced: bool) -> DemoResult:
        shown = _shown(self.root)
        self.echo(f"kfm-prov demo: an example lake, end to end, in {shown}/"
                  + (" (the previous demo lake was replaced)" if replaced else ""))
        self.raw_captures()
        self.signing_key()
        self.commit_pipelines()
        self.capture_runs()
        self.gate_and_promote()
        self.second_version()
        self.trace()
        self.site()
        self.where_to_look()
        if self.result.site:
            self.heading(f"Open the audit site: {_shown(self.root / self.result.site)}")
        return self.result

    # -- 1. the lake and its raw captures --------------------------------------------------------

    def raw_captures(self) -> None:
        from kfm_prov.examples.data import CAPTURES

        self.heading("1. A lake, and raw captures recorded with license and sensitivity")
        self.echo("   kfm-prov init: data/raw, data/work, data/processed, catalogs, kfm-prov.toml")
        self.add_raw(CAPTURES)

    def signing_key(self) -> None:
        """A demo key beside the lake (never inside it); the lake signs with it and trusts it."""
        from kfm_prov.core.keys import generate, load_signing_key

        key_dir = self.root.parent / f"{self.root.name}-demo-key"
        private, public = key_dir / "kfm-prov-signing.key", key_dir / "kfm-prov-signing.pub"
        try:
            keyid = load_signing_key(private).keyid if public.is_file() else None
        except InputError:
            keyid = None
        if keyid is None:  # none yet, or unusable: make a fresh one
            for old in (private, public):
                old.unlink(missing_ok=True)
            keyid = generate(key_dir).keyid
        toml = self.root / "kfm-prov.toml"
        toml.write_text(toml.read_text(encoding="utf-8") + "\n# The demo's signing key"
                        " (a demo key: never use it for real data).\n[signing]\n"
                        f"key = {json.dumps(str(private))}\n\n[trust]\n"
                        f"keys = [{json.dumps(str(public))}]\n", encoding="utf-8")
        self.lake = Lake.open(self.root)
        self.result.key = {"private_key": str(private), "public_key": str(public),
                           "keyid": keyid}
        self.echo(f"   demo signing key {_shown(private)} (a DEMO key, outside the lake;"
                  f" id {keyid[:16]}): every run and promotion is signed")

    def add_raw(self, captures: Sequence[Capture]) -> None:
        from kfm_prov.examples.data import record_captures

        for capture, rel in zip(captures, record_captures(self.lake, captures), strict=True):
            self.echo(f"   raw add  {rel:45} {capture.sensitivity:19} {capture.license}")

    def commit_pipelines(self) -> None:
        from kfm_prov.examples import write_pipelines

        write_pipelines(self.pipelines)
        self.git("init", "-q")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "Example pipelines of kfm-prov")
        self.result.commit = self.git("rev-parse", "HEAD").strip()
        self.echo(f"   pipelines committed to git in {PIPELINES}/ (commit"
                  f" {self.result.commit[:12]}); the gate insists on committed code")

    # -- 2. runs -----------------------------------------------------------------------------------

    def capture_runs(self) -> None:
        self.heading("2. Pipeline runs, each captured as receipts and W3C PROV")
        runs = self.pipeline("glo_land_patents")
        self.echo("   glo_land_patents  Python API (lake.capture), a chain of three runs:")
        self.echo("       " + "  ->  ".join(f"{step} {run_id[:10]}…" for step, run_id in
                                            zip(("normalise", "locate", "parcels"), runs,
                                                strict=True)))
        self.pipeline("khri_sites")
        self.echo("   khri_sites        Python API with run.redact(...): precise site points"
                  " (sensitive-location)")
        self.echo("                     -> sites snapped to a 0.5° grid and counted (public)")
        self.nhgis()
        self.kansas_memory()

    def pipeline(self, family: str, *args: str) -> list[str]:
        """Run an example Python pipeline as its own process; the run ids it made."""
        before = set(self.run_ids(family))
        self.child([sys.executable, f"{PIPELINES}/{family}/pipeline.py", "--root",
                    str(self.root), *args], f"python {PIPELINES}/{family}/pipeline.py")
        made = [r for r in self.run_ids(family) if r not in before]
        self.result.runs.setdefault(family, []).extend(made)
        return made

    def nhgis(self) -> None:
        table, tracts = ("data/raw/nhgis_tracts/nhgis_tract_2020.csv",
                         "data/raw/nhgis_tracts/tracts_2020.geojson")
        args = ["run", "-f", "nhgis_tracts", "-p", "pipelines/nhgis_tracts", "-i", table,
                "-i", f"{tracts}:auxiliary", "-o", "tracts_population.geojson:product",
                "--param", "year=2020", "--param", "join_key=GISJOIN", "--git-dir", PIPELINES,
                "--json", "--", "sh", f"{PIPELINES}/nhgis_tracts/join.sh", table, tracts]
        out = self.kfm(args)
        run_id = json.loads(out)["run_id"]
        self.result.runs["nhgis_tracts"] = [run_id]
        self.echo("   nhgis_tracts      kfm-prov run -- sh join.sh  (awk joins the census table"
                  " to tract polygons)")
        self.echo(f"                     run {run_id[:10]}…: no Python in the pipeline at all")

    def kansas_memory(self) -> None:
        out = self.child(["sh", f"{PIPELINES}/kansas_memory/pipeline.sh", str(self.root)],
                         "sh pipelines/kansas_memory/pipeline.sh")
        run_dir = out.strip().splitlines()[-1]
        recorded = json.loads(self.kfm(["record", run_dir, "--json"]))
        self.result.runs["kansas_memory"] = [recorded["run_id"]]
        self.echo("   kansas_memory     a shell pipeline wrote its own receipts; kfm-prov record"
                  " validated them,")
        self.echo(f"                     re-hashed every file and took in run {recorded['run_id']}")

    # -- 3. the gate -------------------------------------------------------------------------------

    def gate_and_promote(self) -> None:
        self.heading("3. The gate proves each product reconstructible from raw, then promotes")
        glo = self.result.runs["glo_land_patents"][-1]
        report = self.lake.check(glo)
        passed = sum(c.status == "pass" for c in report.checks)
        self.echo(f"   check    glo_land_patents parcels: {passed}/{len(report.checks)} checks"
                  f" pass over {len(report.runs)} runs and {len(report.entities)} files")
        for run_id in (glo, self.result.runs["khri_sites"][-1],
                       self.result.runs["nhgis_tracts"][-1],
                       self.result.runs["kansas_memory"][-1]):
            self.promote(run_id)
        self.refuse_precise_sites()

    def promote(self, run_id: str) -> PromotionResult:
        result = self.lake.promote(run_id, requested_by="kfm-prov demo")
        self.result.promotions.append(result)
        label = f"{result.family} {result.version}"
        self.echo(f"   promoted {label:22} {', '.join(result.files)}")
        return result

    def refuse_precise_sites(self) -> None:
        """Someone labels the precise site points public and asks to promote them."""
        run_id = self.pipeline("khri_sites", "--only", "locate", "--label", "public")[0]
        code, out, _ = self.kfm_status(["promote", run_id, "--json"])
        if code == 0:
            raise CheckFailed("the gate promoted precise archaeological sites labelled public",
                              hint="this is a bug in kfm-prov; please report it")
        findings = json.loads(out).get("findings", []) if out.strip() else []
        row = self.lake.resolve_run(run_id)
        refusals = sorted((self.root / row.run_dir / "refusals").glob("*.json"))
        refusal = Refusal(
            run_id=run_id, product=f"{row.run_dir}/artifacts/sites_precise.geojson",
            codes=sorted({f["code"] for f in findings}),
            messages=[f["message"] for f in findings],
            receipt=self.lake.rel(refusals[-1]) if refusals else None, exit_code=code)
        self.result.refusals.append(refusal)
        self.echo(f"   refused  khri_sites precise points labelled public (kfm-prov promote"
                  f" exited {code}):")
        for finding in findings:
            self.wrapped(f"[{finding['code']}] {finding['message']}", indent=7)
        if refusal.receipt:
            self.wrapped(f"refusal receipt (nothing else was written): {refusal.receipt}",
                         indent=7)

    # -- 4. a second version -----------------------------------------------------------------------

    def second_version(self) -> None:
        from kfm_prov.examples.data import LATER_CAPTURES

        self.heading("4. A new capture, the pipeline again, and a second version")
        self.add_raw(LATER_CAPTURES)
        self.pipeline("glo_land_patents")
        result = self.promote(self.result.runs["glo_land_patents"][-1])
        self.echo(f"            {result.family} {result.version} is a revision of v1"
                  " (PROV wasRevisionOf, STAC predecessor-version)")

    # -- 5. trace ----------------------------------------------------------------------------------

    def trace(self) -> None:
        product = next(f for f in self.result.latest.files if f.endswith(GLO_PRODUCT))
        self.result.traced = product
        self.heading("5. An auditor asks: where did the published parcels come from?"
                     " Is the lake intact?")
        self.echo(f"   $ kfm-prov trace {product}")
        self.result.trace = self.kfm(["trace", product])
        for line in self.result.trace.rstrip().splitlines():
            self.echo(f"   {line}")
        self.echo("   $ kfm-prov verify")
        self.result.verified = self.kfm(["verify"]).strip()
        self.echo(f"   {self.result.verified}")

    # -- 6. the audit site -------------------------------------------------------------------------

    def site(self) -> None:
        """Every family, version, certificate and lineage graph as static pages."""
        self.heading("6. An auditor browses: every version, its certificate and its lineage")
        self.echo(f"   $ kfm-prov site {SITE_DIR}")
        self.kfm(["site", SITE_DIR])
        self.result.site = f"{SITE_DIR}/index.html"
        self.echo(f"   wrote {SITE_DIR}/: static pages, no network request; open"
                  f" {SITE_DIR}/index.html in a browser")

    # -- 7. where to look --------------------------------------------------------------------------

    def where_to_look(self) -> None:
        latest, shown = self.result.latest, _shown(self.root)
        self.heading(f"Where to look (in {shown}/)")
        for label, rel in (("product", self.result.traced), ("STAC item", latest.stac_item),
                           ("PROV bundle", latest.prov_bundle),
                           ("certificate", latest.certificate), ("DCAT", latest.dcat),
                           ("attestation", latest.attestation),
                           ("STAC catalog", f"{self.lake.config.rel('stac')}/catalog.json")):
            if rel:
                self.echo(f"   {label:13} {rel}")
        self.heading("Next, try")
        refused = self.result.refusals[0].run_id if self.result.refusals else None
        steps = [(f"cd {shown}", "")]
        activate = _activate_hint()
        if activate:
            steps.insert(0, (activate, "put kfm-prov on your PATH"))
        steps += [("kfm-prov runs", "every run, oldest first"),
                 (f"kfm-prov show {latest.run_id}", "one run: files, digests, gates")]
        if refused:
            steps.append((f"kfm-prov check {refused}", "the refusal again, with its lineage"))
        steps += [(f"kfm-prov trace {self.result.traced} --format mermaid",
                   "the lineage as a diagram"),
                  ("kfm-prov verify", "audit the whole lake")]
        if latest.attestation and self.result.key:
            steps.append((f"kfm-prov verify-artifact {self.result.traced} --attestation"
                          f" {latest.attestation} --key"
                          f" {_shown(Path(self.result.key['public_key']))}",
                          "check the product offline, as an auditor who downloaded it"))
        steps.append((f"kfm-prov export --family {latest.family} --format turtle",
                      "PROV for an external catalog"))
        width = max(len(command) for command, _ in steps if len(command) <= 48)
        for command, why in steps:
            self.echo(f"   {command:{width}}  {'# ' + why if why else ''}".rstrip())

    # -- plumbing ----------------------------------------------------------------------------------

    def wrapped(self, text: str, *, indent: int) -> None:
        """Long messages folded at 100 columns, paths never broken."""
        import textwrap

        for line in textwrap.wrap(text, width=100, initial_indent=" " * indent,
                                  subsequent_indent=" " * (indent + 2),
                                  break_long_words=False, break_on_hyphens=False):
            self.echo(line)

    def heading(self, text: str) -> None:
        self.echo("")
        self.echo(text)

    def run_ids(self, family: str) -> list[str]:
        return [r.run_id for r in self.lake.runs(family)]

    def git(self, *args: str) -> str:
        env = {**self.env, **GIT_IDENTITY}
        return self.child(["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
                           *args], f"git {args[0]}", cwd=self.pipelines, env=env)

    def kfm(self, args: list[str]) -> str:
        code, out, err = self.kfm_status(args)
        if code != 0:
            raise _step_failed("kfm-prov " + " ".join(args), code, err)
        return out

    def kfm_status(self, args: list[str]) -> tuple[int, str, str]:
        """``kfm-prov ARGS`` in the lake, as a user would type it (same installation)."""
        done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    def child(self, argv: list[str], shown: str, *, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> str:
        done = subprocess.run(argv, cwd=cwd or self.root, env=env or self.env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _step_failed(shown, done.returncode, done.stderr)
        return done.stdout


def _child_env(root: Path) -> dict[str, str]:
    """The environment of the demo's processes: this kfm-prov first on the path, this lake."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH"))
                                        if p)
    env["KFM_PROV_ROOT"] = str(root)
    env.pop("KFM_PROV_SIGNING_KEY", None)  # the demo signs with its demo key
    return env


def _step_failed(shown: str, code: int, stderr: str) -> KfmProvError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return CheckFailed(f"demo step `{shown}` exited {code}: {last}",
                       hint="rerun with --debug, and report it if kfm-prov is to blame")


def _activate_hint() -> str | None:
    """``. <venv>/bin/activate`` when this kfm-prov is not the one on the PATH."""
    bin_dir = os.path.abspath(os.path.dirname(sys.executable))
    found = shutil.which("kfm-prov")
    activate = Path(bin_dir) / "activate"
    if (found and os.path.dirname(os.path.abspath(found)) == bin_dir) or not activate.is_file():
        return None
    return f". {_shown(activate)}"


def _shown(path: Path) -> str:
    """How to name ``path`` to the user: relative to where they stand when it is below."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
