"""Where a lake's published records live, and the index rows its certificates imply.

Path rules shared by publication (STAC, certificates) and by the store that indexes them,
kept here so that ``index rebuild`` needs nothing from the publishing layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.errors import InputError
from kfm_prov.store.certificate import certificates
from kfm_prov.store.index import PromotionRow
from kfm_prov.store.protocol import LineageStore

STAC_DIR = "data/stac"  # the default; a lake may configure another (Release.stac_dir)


def item_id(family: str, version: str) -> str:
    """The item id of a version: ``<family>-<version>``, lowercase (STAC lint rules)."""
    return f"{family}-{version}".lower()


def catalog_path(stac_dir: str = STAC_DIR) -> str:
    """Root-relative path of the root catalog (``stac_dir`` is the configured STAC folder)."""
    return f"{stac_dir}/catalog.json"


def collection_path(family: str, stac_dir: str = STAC_DIR) -> str:
    """Root-relative path of a family's collection."""
    return f"{stac_dir}/{family}/collection.json"


def item_path(family: str, version: str, stac_dir: str = STAC_DIR) -> str:
    """Root-relative path of a version's item: the file name equals the item id."""
    iid = item_id(family, version)
    return f"{stac_dir}/{family}/{iid}/{iid}.json"


def family_versions(config: LakeConfig, index: LineageStore, family: str) -> list[str]:
    """Versions of a family, in promotion order (by the index, else by name).

    The index orders what it knows; a version directory it does not know (a promotion
    still being indexed, an index being rebuilt) comes after, so it is never skipped.
    """
    ordered = sorted({(r.promoted_at, r.version) for r in index.promotions(family)})
    versions = [v for _, v in ordered]
    family_dir = config.dir("processed") / family
    if family_dir.is_dir():
        versions += sorted(p.name for p in family_dir.iterdir() if p.name not in versions)
    return versions


def promotion_rows_of(config: LakeConfig, cert: Mapping[str, Any], cert_rel: str,
                      ) -> list[PromotionRow]:
    """The index rows of one certificate: one per promoted product.

    A product carried forward from an earlier version is indexed with the run that made
    it (``carried_from.run_id``), not the run this version promoted.
    """
    family, version = cert["family"], cert["version"]
    item = item_path(family, version, config.rel("stac"))
    bundle = f"{config.rel('prov')}/{family}/{version}.json"
    return [PromotionRow(family, version, (p.get("carried_from") or {}).get("run_id")
                         or cert["run_id"], p["path"], p["digest"], p["source_path"],
                         cert["issued_at"], item, bundle, cert_rel)
            for p in cert["products"]]


def promotion_rows(config: LakeConfig) -> list[PromotionRow]:
    """Promotions as recorded by their certificates (for ``index rebuild``)."""
    rows = []
    for path in certificates(config):
        rel = path.relative_to(config.root).as_posix()
        try:
            rows += promotion_rows_of(config, jsonio.read_json(path, display=rel), rel)
        except (InputError, KeyError, TypeError):
            continue  # `kfm-prov verify` reports broken certificates
    return rows
