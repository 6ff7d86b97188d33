"""Find a dataset's raw files, or download them (from PyG's sources) into the writable cache.

Lookup order for the raw files of one dataset (all files of the set must be in one folder):

1. ``<data root>/<sub>/raw/`` (``--data-root`` / ``$CODESIGN_DATA`` / ``../shared/data``; read in place,
   may be read-only);
2. ``<cache>/data/<sub>/raw/`` (``codesign.runtime.data_root.cache_dir()``: an earlier download);
3. otherwise download the missing files into (2), from the URLs PyG's loaders use:

   * Planetoid: ``https://github.com/kimiyoung/planetoid/raw/master/data/ind.<name>.<ext>``
     (``torch_geometric.datasets.Planetoid``);
   * Actor: ``https://raw.githubusercontent.com/graphdml-uiuc-jlu/geom-gcn/master/`` +
     ``new_data/film/<file>`` and ``splits/<file>`` (``torch_geometric.datasets.Actor``).

Each download goes to ``<file>.part`` and is renamed only after its sha256 matched :data:`SHA256`
(the upstream files' values, as listed in shared/data/SOURCES.md); a file with no known value is
kept unchecked. When offline (any ``OSError``, e.g. ``urllib.error.URLError``, or a cut-off
transfer), the error is the one line that says where the files should be and how to point
``CODESIGN_DATA`` at them.
``_fetch(url, dest)`` (over :func:`codesign.runtime.fetch.fetch`, the loaders' only network access) is
what tests replace.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable
from pathlib import Path

from codesign.runtime.data_root import cache_dir
from codesign.runtime.fetch import fetch, file_digest
from costmodels.errors import CodesignError

log = logging.getLogger(__name__)

PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
ACTOR_URL = "https://raw.githubusercontent.com/graphdml-uiuc-jlu/geom-gcn/master"
TIMEOUT_S = 60.0

# sha256 of the upstream files (kimiyoung/planetoid af6abf4, geom-gcn f1fc0d1), from SOURCES.md
SHA256 = {
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "ind.pubmed.x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
    "ind.pubmed.tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
    "ind.pubmed.allx": "508e538e2abdccdd54c4d3e9f49d638b4af7107d85845f66ddea5a5152658b7e",
    "ind.pubmed.y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
    "ind.pubmed.ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
    "ind.pubmed.ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
    "ind.pubmed.graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
    "ind.pubmed.test.index": "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5",
    "out1_node_feature_label.txt": "1d5cdd094f8b91e770f6decfca85b35cf42f75d1efb51055fd6af16e11820ff8",
    "out1_graph_edges.txt": "997cdce67ea9c29257d3ffe796328391931901cf823830affa453178b60e2c3e",
    "film_split_0.6_0.2_0.npz": "4505a41d4e90abd94d1ec22571ce528b09ad7cf20d87f764aebd4177590767f5",
    "film_split_0.6_0.2_1.npz": "1871b0d24e3977c41e378fd24acc8025b63f86b77739be77a5b558d1287f207d",
    "film_split_0.6_0.2_2.npz": "d26680e911ef3ecc9fc2a26d90c9d35028c63aadd7a5aea774649d1496c282cb",
    "film_split_0.6_0.2_3.npz": "6755ad5f6a0be8594b344af3d2261eed935b83b73c4d70136e1a7beea7f78cb0",
    "film_split_0.6_0.2_4.npz": "328fdca62b25074f21f2922518e042f24b3b8a1fc378f9dfb2cae36439aed902",
    "film_split_0.6_0.2_5.npz": "5b3161a8dc8de4b2e651ebd56d68e768d1377044895b325566117fe26ab81cb7",
    "film_split_0.6_0.2_6.npz": "e251b38abd4d7931b5e9ae5aba99dcdf87f0be283bdf6e65421274a1c9ef1df6",
    "film_split_0.6_0.2_7.npz": "12164ef9f5620a2f12a387f4f2b8636859d42201101d6d32829ade62d5a98326",
    "film_split_0.6_0.2_8.npz": "405cd1f7f631f678119f8bf2405809e86614d532985beb59566fcf95abd35b3f",
    "film_split_0.6_0.2_9.npz": "505691c5d41bb37b20d085415dcdde2e8e68b5bc4e1feb2c0e361308002012bb",
}


def planetoid_url(file: str) -> str:
    return f"{PLANETOID_URL}/{file}"


def actor_url(file: str) -> str:
    return f"{ACTOR_URL}/{'splits' if file.startswith('film_split') else 'new_data/film'}/{file}"


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (:func:`codesign.runtime.fetch.fetch`; the seam tests replace)."""
    fetch(url, dest, TIMEOUT_S)


def missing_error(dataset: str, folder: Path, files: list[str], why: str = "") -> CodesignError:
    """The one-line 'files missing' error: where they should be, and how to point CODESIGN_DATA there."""
    return CodesignError(
        f"dataset {dataset!r}: raw files missing in {folder} ({', '.join(files[:3])}"
        f"{', ...' if len(files) > 3 else ''}){why}; put them there, or point CODESIGN_DATA (or --data-root) "
        f"at a folder holding {folder.parent.parent.name}/{folder.parent.name}/raw/"
    )


def _absent(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


def raw_folder(dataset: str, root: Path, sub: str, names: list[str], url_of: Callable[[str], str]) -> Path:
    """The folder holding all of ``names``: ``root / sub`` (the data root's), else the cache's copy
    ``cache_dir() / "data" / sub``, downloading what is missing there (see the module docstring)."""
    folder = root / sub
    if not _absent(folder, names):
        return folder
    cached = cache_dir(create=False) / "data" / sub
    todo = _absent(cached, names)
    if not todo:
        return cached
    made = [p for p in (cached, *cached.parents) if not p.exists()]  # removed again if nothing arrives
    try:
        cache_dir()  # checks it is a writable folder
        cached.mkdir(parents=True, exist_ok=True)
        _download(dataset, folder, cached, todo, names, url_of)
    except BaseException:
        for p in made:  # deepest first: a refusal leaves no empty cache folders behind
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return cached


def _download(dataset: str, folder: Path, cached: Path, todo: list[str], names: list[str],
              url_of: Callable[[str], str]) -> None:
    for name in todo:
        url, part = url_of(name), cached / f"{name}.part"
        log.info("downloading %s to %s", url, cached)
        try:
            _fetch(url, part)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, refused, cut off
            part.unlink(missing_ok=True)
            reason = str(getattr(exc, "reason", exc)).replace("\n", " ")
            raise missing_error(dataset, folder, _absent(folder, names),
                                f" and the download of {url} failed ({reason})") from None
        expected, got = SHA256.get(name), file_digest(part)
        if expected is not None and got != expected:
            part.unlink(missing_ok=True)
            raise CodesignError(f"dataset {dataset!r}: downloaded {url} has sha256 {got[:16]}..., expected "
                                f"{expected[:16]}...; retry later, or put the original file in {folder}")
        part.replace(cached / name)
