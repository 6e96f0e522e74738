"""The durable journal of accepted OpenLineage events, in the lake (``paths.openlineage``).

One file per event, named by the digest of the event as sent and holding it scrubbed of
secrets (with where they were), under a directory per OpenLineage run:
an event is acknowledged only after its file and directory entry are on disk, so a crash
after "accepted" loses nothing, and an event posted twice is found by its name. A run's
``recorded.json`` says which recorded run its events became. A lock per run serialises
whoever appends to or closes that run (threads of ``serve``, ``record --openlineage``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.errors import InputError
from kfm_prov.openlineage.events import Event, journaled_event
from kfm_prov.store.digests import hex_of

STATIC = "_static"  # dataset and job events, which belong to no run
RECORDED = "recorded.json"


class Journal:
    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self.dir = config.dir("openlineage") / "journal"

    def _run_dir(self, run_id: str | None) -> Path:
        return self.dir / (run_id or STATIC)

    def _event_path(self, event: Event) -> Path:
        return self._run_dir(event.run_id) / f"event-{hex_of(event.digest)}.json"

    @contextmanager
    def lock(self, run_id: str | None) -> Iterator[None]:
        from filelock import FileLock

        folder = self._run_dir(run_id)
        if not folder.is_dir():
            self._make_durable_dir(folder)
        with FileLock(str(folder / ".lock")):
            yield

    def _make_durable_dir(self, folder: Path) -> None:
        """Create ``folder`` (and missing parents) so that its entry survives a crash."""
        missing = [folder, *(p for p in folder.parents if not p.exists())]
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
            jsonio.fsync_dir(path.parent)

    def has(self, event: Event) -> bool:
        return self._event_path(event).is_file()

    def append(self, event: Event) -> None:
        """Write the event, scrubbed, durably (file and directory entry fsynced).

        Hold the run's lock."""
        clean, secrets = event.scrubbed()
        entry = {"digest": event.digest, "secrets": secrets, "event": clean.data}
        jsonio.atomic_write(self._event_path(event), jsonio.dumps(entry))

    def entries(self, run_id: str) -> list[tuple[Event, list[dict[str, str]]]]:
        """The run's events (scrubbed) with their secret locations, in order: by time,
        then START < RUNNING < COMPLETE/FAIL/ABORT."""
        folder = self._run_dir(run_id)
        found = []
        for path in sorted(folder.glob("event-*.json")):
            display = path.relative_to(self.config.root).as_posix()
            try:
                entry = jsonio.read_json(path, display=display)
                found.append((journaled_event(entry["event"], entry["digest"]),
                              list(entry.get("secrets") or [])))
            except (InputError, KeyError, TypeError, ValueError):
                continue  # written by us after the checks; a damaged file is skipped
        return sorted(found, key=lambda item: item[0].sort_key())

    def events(self, run_id: str) -> list[Event]:
        return [event for event, _ in self.entries(run_id)]

    def recorded(self, run_id: str) -> dict[str, Any] | None:
        path = self._run_dir(run_id) / RECORDED
        if not path.is_file():
            return None
        try:
            data = jsonio.read_json(path, display=RECORDED)
        except InputError:
            return None
        return data if isinstance(data, dict) else None

    def mark_recorded(self, run_id: str, info: dict[str, Any]) -> None:
        jsonio.write_json(self._run_dir(run_id) / RECORDED, info)

    def run_ids(self) -> list[str]:
        """OpenLineage runs with events in the journal."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_dir() and p.name != STATIC)
