"""Public datasets: the registry of where they come from, the cache, and verified downloads.

The **registry** (:data:`REGISTRY`, read from ``sigalex/registry/datasets.toml``) holds each
public dataset's URLs, checksums, citation and licence: data, not code. :func:`fetch`
downloads into :func:`data_home` (``$SIGALEX_DATA``, else the user cache dir) and verifies
the copy: SHA-256 where the publisher gives it (PhysioNet's ``SHA256SUMS.txt`` for CHB-MIT),
else the dataset module's own content check (file counts, sample counts, and a SHA-256 of
the parsed sample values, :func:`values_hash`). :func:`find_dataset` only looks.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .._checks import choice
from .._files import sha256_file
from ..errors import DataError, ParameterError
from .registry import registered_datasets


@dataclass(frozen=True)
class Remote:
    """One file to download: ``url``, saved as ``name``; ``sha256`` when the publisher gives
    it; ``extract`` unpacks a zip's ``members`` (glob) by base name into that folder."""

    url: str
    name: str
    sha256: str = ""
    extract: str | None = None
    members: str = "*"


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: where a dataset comes from, its terms, and how a copy is checked."""

    name: str
    title: str
    homepage: str
    licence: str
    citation: str
    layout: str
    files: tuple[Remote, ...] = ()
    base_url: str | None = None
    sha256sums: Mapping[str, str] = field(default_factory=dict)
    default_files: tuple[str, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)


def _read_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def read_registry(folder) -> dict[str, DatasetInfo]:
    """Registry entries from ``folder/datasets.toml`` and the checksum files it names.

    Parameters
    ----------
    folder : path or importlib.resources.abc.Traversable
        The shipped registry is ``importlib.resources.files("sigalex") / "registry"``.
    """
    folder = Path(folder) if isinstance(folder, str | os.PathLike) else folder
    raw = tomllib.loads((folder / "datasets.toml").read_text(encoding="utf-8"))
    out = {}
    for name, entry in raw.items():
        entry = dict(entry)
        files = tuple(Remote(**f) for f in entry.pop("files", []))
        sums_file = entry.pop("sha256sums", None)
        sums = _read_sums((folder / sums_file).read_text(encoding="utf-8")) if sums_file else {}
        keys = ("title", "homepage", "licence", "citation", "layout")
        info = {k: entry.pop(k) for k in keys}
        out[name] = DatasetInfo(
            name,
            **info,
            files=files,
            base_url=entry.pop("base_url", None),
            sha256sums=MappingProxyType(sums),
            default_files=tuple(entry.pop("default_files", ())),
            meta=MappingProxyType(entry),
        )
    return out


@cache
def _registry() -> dict[str, DatasetInfo]:
    return read_registry(resources.files("sigalex") / "registry")


class _Registry(Mapping):
    def __getitem__(self, name):
        reg = _registry()
        if name not in reg:
            choice("dataset", name, reg)  # a helpful miss: lists them, suggests a near one
        return reg[name]

    def __contains__(self, name: object) -> bool:
        return name in _registry()

    def get(self, name, default=None):
        return _registry().get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(_registry())

    def __len__(self) -> int:
        return len(_registry())


REGISTRY: Mapping[str, DatasetInfo] = _Registry()
"""Registered public datasets by name (``bonn``, ``chbmit``, ``fsdd``)."""


def data_home() -> Path:
    """Where datasets are cached: ``$SIGALEX_DATA``, else the user cache dir
    (``platformdirs.user_cache_dir("sigalex")``, or ``~/.cache/sigalex``)."""
    env = os.environ.get("SIGALEX_DATA")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "sigalex"
    return Path(platformdirs.user_cache_dir("sigalex"))


def _candidates(name: str, root=None) -> list[Path]:
    places = []
    if root is not None:
        places.append(Path(root) / name)
    env = os.environ.get("SIGALEX_DATA")
    if env:
        places.append(Path(env).expanduser() / name)
    home = data_home()
    if home / name not in places:
        places.append(home / name)
    return places


def findable_datasets() -> list[str]:
    """Datasets that can be looked for: those with a registry entry or a presence check."""
    return sorted(
        name
        for name, spec in registered_datasets().items()
        if name in _registry() or spec.looks_present is not None
    )


def _looks_present(name: str, path: Path) -> bool:
    if not path.is_dir():
        return False
    spec = registered_datasets().get(name)
    if spec is not None and spec.looks_present is not None:
        return bool(spec.looks_present(path))
    return any(path.iterdir())


def _how_to(name: str, places: Sequence[Path], info: DatasetInfo | None = None) -> str:
    info = info or _registry().get(name)
    where = f"looked in {', '.join(str(p) for p in places)}."
    if info is None:
        return (
            f"{where} Put a copy in one of them in the {name!r} layout, or set SIGALEX_DATA "
            f"to a folder holding {name}/"
        )
    urls = [f.url for f in info.files] or [info.base_url or info.homepage]
    return (
        f"{where} To provide it, download "
        f"{' '.join(urls)} (see datasets/{info.name}.md), unpack it there in the "
        f"{info.layout!r} layout, or set SIGALEX_DATA to a folder holding {info.name}/"
    )


def find_dataset(name: str, *, root=None) -> Path:
    """The local folder of a registered dataset, without downloading.

    Looks in ``root/<name>`` (if given), ``$SIGALEX_DATA/<name>``, then the cache, for a
    folder the dataset's ``looks_present`` accepts.

    Raises
    ------
    DataError
        Not found; the message lists where it looked and how to provide the data.
    ParameterError
        Not a dataset that can be looked for (unknown, or one always given a root).
    """
    findable = findable_datasets()
    if name in registered_datasets() and name not in findable:
        raise ParameterError(f"dataset {name!r} is only read from a folder given as its root")
    choice("dataset", name, findable)
    places = _candidates(name, root)
    for p in places:
        if _looks_present(name, p):
            return p
    raise DataError(f"dataset {name!r} not found locally; {_how_to(name, places)}")


def _download(url: str, dest: Path, *, timeout_s: float) -> str:
    """Stream ``url`` to ``dest``; return the SHA-256 of the bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "sigalex"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(tmp, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return h.hexdigest()


def _extract(archive: Path, remote: Remote, root: Path) -> int:
    """Unpack members matching ``remote.members`` by base name into ``root/remote.extract``."""
    assert remote.extract is not None  # only archives to unpack are passed here
    target = root / remote.extract
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                base = Path(member.filename).name
                if (
                    member.is_dir()
                    or not base
                    or not fnmatch.fnmatch(member.filename, remote.members)
                ):
                    continue
                with z.open(member) as src, open(target / base, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                n += 1
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(
            f"{archive}: not a readable zip archive ({exc}); delete it and fetch again"
        ) from exc
    if n == 0:
        raise DataError(f"{archive}: no member matches {remote.members!r}")
    return n


def values_hash(
    files: Sequence[Path],
    read: Callable[[Path], np.ndarray],
    *,
    key: Callable[[Path], str] = lambda p: p.stem,
) -> str:
    """SHA-256 over parsed sample values, so line endings and containers do not count.

    Each file, in the given order, contributes ``f"{key(p)}:{n}\\n"`` then its ``n`` values
    as ``read`` returns them (``read(p).tobytes()``, little-endian integers by convention).
    """
    h = hashlib.sha256()
    for p in files:
        v = read(p)
        h.update(f"{key(p)}:{v.size}\n".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def verify(name: str | DatasetInfo, root, *, files: Iterable[str] | None = None) -> list[str]:
    """Check a local copy of a registered dataset; return the problems (empty: verified).

    The dataset module's own check when it has one (bonn, fsdd: file and sample counts and
    the values hash); else the SHA-256 of each present file (or of ``files``, glob patterns
    relative to the root) against the registry's list (chbmit: PhysioNet's SHA256SUMS.txt).
    """
    info = REGISTRY[name] if isinstance(name, str) else name
    spec = registered_datasets().get(info.layout)
    check = spec.verify if spec is not None and spec.verify is not None else verify_sha256
    return check(info, Path(root), files=files)


def verify_sha256(
    info: DatasetInfo, root: Path, *, files: Iterable[str] | None = None
) -> list[str]:
    """Problems with the SHA-256 of each present file (or of ``files``) against ``info``'s list."""
    sums = info.sha256sums
    names = [n for n in sums if (root / n).is_file()] if files is None else _select(info, files)
    problems = []
    for n in names:
        p = root / n
        if not p.is_file():
            problems.append(f"{p}: missing")
        elif sha256_file(p) != sums[n]:
            problems.append(f"{p}: SHA-256 differs from the published checksums of {info.name}")
    return problems


def _select(info: DatasetInfo, patterns: Iterable[str]) -> list[str]:
    """Files of a checksummed dataset matching glob patterns (each must match something)."""
    names = sorted(info.sha256sums)
    out: list[str] = []
    for pat in patterns:
        hit = [n for n in names if fnmatch.fnmatch(n, pat)]
        if not hit:
            raise ParameterError(f"{pat!r} matches no file of {info.name} (e.g. {names[:3]})")
        out.extend(h for h in hit if h not in out)
    return out


def fetch(
    name: str | DatasetInfo,
    *,
    root=None,
    files: Iterable[str] | None = None,
    force: bool = False,
    timeout_s: float = 60.0,
) -> Path:
    """Download a registered dataset into the cache (if not already there) and verify it.

    Parameters
    ----------
    name : str or DatasetInfo
        ``"bonn"``, ``"fsdd"``, ``"chbmit"`` (or an entry with other URLs, e.g. a mirror).
    root : path, optional
        Cache root (default :func:`data_home`); the data go to ``root/<name>``.
    files : iterable of str, optional
        chbmit only: glob patterns of files to take (``["chb01/*.edf", "chb01/*summary.txt"]``;
        default: the index files and case chb01, about 1 GB).
    force : bool
        Download again even when a verified copy is present.
    timeout_s : float
        Network timeout per request, seconds.

    Returns
    -------
    pathlib.Path
        ``root/<name>``, verified.

    Raises
    ------
    DataError
        Offline or unreachable (says what is missing, where it looked, how to provide it), a
        checksum or content mismatch (the bad file is removed), or a corrupt archive.
    """
    info = REGISTRY[name] if isinstance(name, str) else name
    dest = Path(root if root is not None else data_home()) / info.name
    places = _candidates(info.name, root)
    if info.sha256sums:
        wanted = _select(info, files if files is not None else info.default_files)
        assert info.base_url is not None  # checksummed datasets are listed under a base URL
        remotes = [
            Remote(info.base_url.rstrip("/") + "/" + n, n, info.sha256sums[n]) for n in wanted
        ]
    else:
        if files is not None:
            raise ParameterError(f"files= only applies to checksummed datasets, not {info.name!r}")
        wanted, remotes = None, list(info.files)
    if not force and dest.is_dir() and not verify(info, dest, files=wanted):
        return dest
    for remote in remotes:
        target = dest / remote.name if remote.extract is None else dest / ".download" / remote.name
        if (
            not force
            and remote.sha256
            and target.is_file()
            and sha256_file(target) == remote.sha256
        ):
            continue
        try:
            digest = _download(remote.url, target, timeout_s=timeout_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(
                f"could not download {remote.name} of dataset {info.name!r} from {remote.url} "
                f"({reason}); {_how_to(info.name, places, info)}"
            ) from exc
        if remote.sha256 and digest != remote.sha256.lower():
            target.unlink(missing_ok=True)
            raise DataError(
                f"{remote.url}: SHA-256 {digest} does not match the published {remote.sha256}; "
                f"the download was deleted. Try again, or {_how_to(info.name, places, info)}"
            )
        if remote.extract is not None:
            _extract(target, remote, dest)
            target.unlink()
    shutil.rmtree(dest / ".download", ignore_errors=True)
    problems = verify(info, dest, files=wanted)
    if problems:
        raise DataError(
            f"dataset {info.name!r} in {dest} failed verification: {'; '.join(problems[:5])}"
            f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}. "
            f"Delete it and fetch again, or {_how_to(info.name, places, info)}"
        )
    return dest


def with_urls(
    name: str, urls: Mapping[str, str] | None = None, *, base_url: str | None = None
) -> DatasetInfo:
    """A registry entry with other download URLs (a mirror, a local copy): ``urls`` maps a
    file name (``"Z.zip"``) to its URL; ``base_url`` replaces a checksummed dataset's base."""
    info = REGISTRY[name]
    urls = dict(urls or {})
    unknown = sorted(set(urls) - {f.name for f in info.files})
    if unknown:
        raise ParameterError(
            f"{info.name} has no files {unknown}; it has {[f.name for f in info.files]}"
        )
    files = tuple(replace(f, url=urls.get(f.name, f.url)) for f in info.files)
    return replace(info, files=files, base_url=base_url or info.base_url)


__all__ = [
    "REGISTRY",
    "DatasetInfo",
    "Remote",
    "data_home",
    "fetch",
    "find_dataset",
    "read_registry",
    "values_hash",
    "verify",
    "verify_sha256",
    "with_urls",
]
