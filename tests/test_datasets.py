"""Dataset layouts on the real data, bad files, the registry, and verified fetch from a local server."""

import dataclasses
import functools
import hashlib
import http.server
import logging
import os
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sigalex import datasets as D
from sigalex.config import Config, load_config
from sigalex.datasets.bonn import bonn_set, read_bonn_ints
from sigalex.datasets.fsdd import fsdd_name
from sigalex.datasets.remote import read_registry, values_hash
from sigalex.errors import ConfigError, DataError, ParameterError
from sigalex.io import load_recording

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SIGALEX_DATA", REPO.parent / "shared" / "data"))


def _need(name, marker):
    root = DATA / name
    if not (root / marker).exists():
        pytest.skip(f"{name} not found under {root} (set SIGALEX_DATA to a copy)")
    return root


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder -> base URL."""
    servers = []

    def serve(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


# --- layouts on the real data ----------------------------------------------------------------


@pytest.mark.needs_data
def test_bonn_all_500_segments_load_with_set_labels():
    root = _need("bonn", "Z")
    ds = D.bonn(root)
    assert len(ds) == 500 and ds.classes == ["A", "B", "C", "D", "E"] and ds.errors == []
    want = {"Z": "A", "O": "B", "N": "C", "F": "D", "S": "E"}
    for it in ds.items:
        assert it.label == want[it.path.parent.name]
        assert it.group == f"bonn-{it.path.stem.upper()}"
        rec = load_recording(it.path, sample_rate=it.sample_rate)
        assert rec.data.shape == (1, 4097) and rec.sample_rate == 173.61
    assert sorted(np.unique(ds.labels, return_counts=True)[1]) == [100] * 5
    assert len(set(ds.groups)) == 500  # each segment its own group


@pytest.mark.needs_data
def test_bonn_tasks():
    root = _need("bonn", "Z")
    ae = D.bonn(root, task="A-E")
    assert len(ae) == 200 and ae.classes == ["A", "E"]
    assert {it.path.parent.name for it in ae.items} == {"Z", "S"}
    binary = D.bonn(root, task="ABCD-E")
    assert binary.classes == ["ABCD", "E"] and np.bincount(binary.targets).tolist() == [400, 100]
    three = D.bonn(root, task="AB-CD-E")
    assert three.classes == ["AB", "CD", "E"] and np.bincount(three.targets).tolist() == [
        200,
        200,
        100,
    ]
    custom = D.bonn(root, task={"E": "seizure", "A": "healthy"})
    assert custom.classes == ["healthy", "seizure"] and len(custom) == 200
    with pytest.raises(ParameterError, match=r"unknown bonn task 'A-F'"):
        D.bonn(root, task="A-F")
    ws = D.bonn(root, task="A-E").windows(window_s=23.6)
    assert len(ws) == 200 and all(w.n_times == 4097 for w in ws)


@pytest.mark.needs_data
def test_fsdd_all_3000_files_with_digit_and_speaker():
    root = _need("fsdd", "recordings")
    ds = D.fsdd(root)
    assert len(ds) == 3000 and ds.errors == []
    assert np.bincount(ds.targets).tolist() == [300] * 10
    speakers, counts = np.unique(ds.groups, return_counts=True)
    assert speakers.tolist() == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert counts.tolist() == [500] * 6
    lengths = []
    for it in ds.items:
        digit, speaker, _ = it.path.stem.split("_")
        assert (it.label, it.group) == (digit, speaker)
        rec = load_recording(it.path)
        assert rec.sample_rate == 8000 and rec.n_channels == 1
        lengths.append(rec.n_times / 8000)
    assert 0.14 < min(lengths) < 0.15 and 2.28 < max(lengths) < 2.29


@pytest.mark.needs_data
def test_chbmit_excerpts():
    root = _need("chbmit", "chb01")
    ds = D.chbmit(root)
    assert len(ds) == 28 and ds.classes == ["preictal", "ictal"]
    assert sorted(set(ds.groups)) == ["chb01", "chb03"]
    assert np.bincount(ds.targets).tolist() == [14, 14]
    for it in ds.items:
        rec = D.open_item(it)
        assert rec.data.shape == (23, 2561) and rec.sample_rate == 256
        assert it.recording.startswith(it.group + "_")
        assert it.label == ("ictal" if it.path.parent.name == "ictal" else "preictal")
    # the ictal and pre-ictal excerpt of one EDF share their recording id
    recs = [it.recording for it in ds.items if it.group == "chb01"]
    assert recs.count("chb01_03") == 2
    only = D.chbmit(root, patients=["chb03"])
    assert set(only.groups) == {"chb03"} and len(only) == 14
    with pytest.raises(DataError, match=r"chb99"):
        D.chbmit(root, patients=["chb99"])
    ws = ds.windows(window_s=5.0, stride_s=2.5)
    assert len(ws) == 28 * 3 and all(w.group in ("chb01", "chb03") for w in ws)


@pytest.mark.needs_data
def test_find_dataset_uses_sigalex_data(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGALEX_DATA", str(DATA))
    _need("bonn", "Z")
    assert D.find_dataset("bonn") == DATA / "bonn"
    assert D.load_dataset("fsdd").root == DATA / "fsdd"
    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"'bonn' not found locally; looked in .*SIGALEX_DATA"):
        D.find_dataset("bonn")


# --- folder and manifest layouts, bad files --------------------------------------------------


def _wav(path, n, rate=8000):
    soundfile.write(path, np.sin(np.arange(n) / 5).astype(np.float32) * 0.1, rate)


def test_folder_reports_bad_files_and_keeps_good_ones(tmp_path):
    (tmp_path / "yes").mkdir()
    (tmp_path / "no").mkdir()
    _wav(tmp_path / "yes" / "a.wav", 800)
    _wav(tmp_path / "no" / "b.wav", 400)
    (tmp_path / "no" / "empty.wav").write_bytes(b"")
    (tmp_path / "no" / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 3)
    (tmp_path / "no" / "notes.xyz").write_text("?")
    np.save(tmp_path / "yes" / "c.npy", np.array([1.0, np.nan, 2.0]))
    with pytest.warns(UserWarning, match=r"could not be used") as record:
        ds = D.folder(tmp_path, sample_rate=100.0)
    assert len(record) == 2  # one warning for names, one for contents: not one per file
    assert sorted(it.path.name for it in ds.items) == ["a.wav", "b.wav"]
    assert ds.classes == ["no", "yes"]
    joined = "\n".join(ds.errors)
    for name, problem in [
        ("empty.wav", "empty"),
        ("corrupt.wav", "not a readable audio file"),
        ("notes.xyz", "not read"),
        ("c.npy", "NaN"),
    ]:
        assert any(name in e and problem in e for e in ds.errors), (name, joined)
    ws = ds.windows()  # whole clips
    assert sorted(w.n_times for w in ws) == [400, 800]
    with pytest.warns(UserWarning, match=r"could not be used"):
        fixed = ds.windows(window_s=0.075)
    assert len(fixed) == 1 and any("shorter than one window" in e for e in ds.errors)
    with pytest.raises(DataError, match=r"shorter than one window"):
        ds.windows(window_s=0.075, on_error="raise")


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match=r"no such folder"):
        D.folder(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no class folders"):
        D.folder(tmp_path)
    with pytest.raises(DataError, match=r"no Bonn set folders"):
        D.bonn(tmp_path)
    with pytest.raises(DataError, match=r"no FSDD .wav"):
        D.fsdd(tmp_path)
    with pytest.raises(DataError, match=r"no CHB-MIT case folders"):
        D.chbmit(tmp_path)
    with pytest.raises(ParameterError, match=r"unknown dataset layout 'bon'.*did you mean 'bonn'"):
        D.load_dataset("bon", tmp_path)


def test_manifest(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "r1.npy", rng.standard_normal((2, 1000)))
    _wav(tmp_path / "r2.wav", 16000)
    (tmp_path / "m.csv").write_text(
        "path,label,group,split,onset,offset,sample_rate\n"
        "r1.npy,sz,p1,train,0,4,100\n"
        "r1.npy,bg,p1,train,4,10,100\n"
        "r2.wav,bg,p2,test,,,\n"
        "gone.npy,bg,p3,train,,,100\n"
    )
    with pytest.warns(UserWarning, match=r"gone.npy"):
        ds = D.manifest(tmp_path / "m.csv")
    assert len(ds) == 3 and ds.classes == ["bg", "sz"] and ds.group_by == "group"
    assert any("gone.npy: no such file" in e for e in ds.errors)
    split = ds.official_split()
    assert split.train.tolist() == [0, 1] and split.test.tolist() == [2]
    ws = ds.windows(window_s=1.0)
    assert [w.label for w in ws] == ["sz"] * 4 + ["bg"] * 6 + ["bg"] * 2
    assert [w.start for w in ws[:5]] == [0, 100, 200, 300, 400]
    assert {w.group for w in ws} == {"p1", "p2"}

    (tmp_path / "bad.csv").write_text("file,class\nr1.npy,a\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['path', 'label'\]"):
        D.manifest(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("path,label,onset\nr1.npy,a,soon\n")
    with pytest.raises(DataError, match=r"bad2.csv:2: onset='soon' is not a number"):
        D.manifest(tmp_path / "bad2.csv")
    (tmp_path / "bad3.csv").write_text("path,label,split\nr1.npy,a,holdout\n")
    with pytest.raises(DataError, match=r"split='holdout'"):
        D.manifest(tmp_path / "bad3.csv")
    with pytest.raises(DataError, match=r"no such manifest"):
        D.manifest(tmp_path / "none.csv")


# --- registry and fetch ----------------------------------------------------------------------


def test_registry_entries():
    assert sorted(D.REGISTRY) == ["bonn", "chbmit", "fsdd"]
    for info in D.REGISTRY.values():
        assert info.citation and info.licence and info.homepage
        assert info.files or info.base_url
    bonn = D.REGISTRY["bonn"]
    assert [f.name for f in bonn.files] == ["Z.zip", "O.zip", "N.zip", "F.zip", "S.zip"]
    assert "v1.0.9" in D.REGISTRY["fsdd"].files[0].url
    sums = D.REGISTRY["chbmit"].sha256sums
    assert len(sums) == 856
    assert (
        sums["chb01/chb01_03.edf"]
        == "4c4a95a9b4331aeaadadd538763eb2e735950d9aa615b85ee6246c784be8ae90"
    )
    with pytest.raises(ParameterError, match=r"unknown dataset 'bonnn'"):
        D.REGISTRY["bonnn"]


@pytest.mark.needs_data
def test_chbmit_fetch_verifies_sha256_against_physionet_list(tmp_path, server):
    src = _need("chbmit", "chb01")
    files = ["RECORDS", "SUBJECT-INFO", "chb01/*.edf.seizures"]
    info = D.with_urls("chbmit", base_url=server(src))
    got = D.fetch(info, root=tmp_path / "cache", files=files)
    assert got == tmp_path / "cache" / "chbmit"
    assert len(list((got / "chb01").glob("*.seizures"))) == 7
    assert (got / "RECORDS").read_bytes() == (src / "RECORDS").read_bytes()
    assert D.verify("chbmit", got) == []
    # a second call finds the verified copy and downloads nothing (the server is not needed)
    offline = D.with_urls("chbmit", base_url="http://127.0.0.1:9/")
    assert D.fetch(offline, root=tmp_path / "cache", files=files) == got

    # a mirror serving a corrupted file: mismatch, and the bad file is removed
    bad = tmp_path / "mirror"
    shutil.copytree(src, bad, ignore=shutil.ignore_patterns("*.npy"))
    p = bad / "chb01" / "chb01_04.edf.seizures"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte flipped
    p.write_bytes(bytes(raw))
    info = D.with_urls("chbmit", base_url=server(bad))
    with pytest.raises(DataError, match=r"chb01_04.edf.seizures: SHA-256 .* does not match"):
        D.fetch(info, root=tmp_path / "c2", files=["chb01/chb01_04.edf.seizures"])
    assert not (tmp_path / "c2" / "chbmit" / "chb01" / "chb01_04.edf.seizures").exists()
    # the summary here is known not to match PhysioNet's published hash (see SOURCE.md)
    with pytest.raises(DataError, match=r"chb01-summary.txt: SHA-256"):
        D.fetch(
            D.with_urls("chbmit", base_url=server(src)),
            root=tmp_path / "c3",
            files=["chb01/*summary*"],
        )
    with pytest.raises(ParameterError, match=r"matches no file"):
        D.fetch(info, root=tmp_path / "c4", files=["chb99/*"])


def test_fetch_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path / "nowhere"))
    info = D.with_urls("chbmit", base_url="http://127.0.0.1:9/")  # nothing listens on port 9
    with pytest.raises(DataError) as err:
        D.fetch(info, root=tmp_path, files=["RECORDS"], timeout_s=5)
    msg = str(err.value)
    assert "could not download RECORDS" in msg and "http://127.0.0.1:9/RECORDS" in msg
    assert str(tmp_path / "chbmit") in msg and "SIGALEX_DATA" in msg


def _bonn_zips(src: Path, out: Path, *, corrupt: str | None = None) -> dict[str, str]:
    """Zip each Bonn set folder as the publisher does (one zip per set)."""
    out.mkdir(parents=True, exist_ok=True)
    urls = {}
    for s in "ZONFS":
        z = out / f"{s}.zip"
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted((src / s).iterdir()):
                data = p.read_bytes()
                if corrupt == s and p.name.upper().endswith("050.TXT"):
                    lines = data.split(b"\n")
                    lines[0] = str(int(lines[0]) + 1).encode()  # one value changed
                    data = b"\n".join(lines)
                zf.writestr(p.name, data.replace(b"\n", b"\r\n"))  # CRLF: values still match
        urls[f"{s}.zip"] = z.as_uri()
    return urls


@pytest.mark.needs_data
def test_bonn_fetch_verifies_content(tmp_path, server):
    src = _need("bonn", "Z")
    urls = _bonn_zips(src, tmp_path / "zips")
    base = server(tmp_path / "zips")
    info = D.with_urls("bonn", {k: base + k for k in urls})
    got = D.fetch(info, root=tmp_path / "cache")
    assert sorted(p.name for p in got.iterdir()) == ["F", "N", "O", "S", "Z"]
    assert len(D.bonn(got)) == 500
    assert not (got / ".download").exists()

    # one value changed in S050: the values hash catches it
    bad_urls = _bonn_zips(src, tmp_path / "bad", corrupt="S")
    with pytest.raises(DataError, match=r"failed verification: .*S: sample values differ"):
        D.fetch(D.with_urls("bonn", bad_urls), root=tmp_path / "c2")
    # a zip that is not a zip
    (tmp_path / "bad" / "Z.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"not a readable zip"):
        D.fetch(D.with_urls("bonn", bad_urls), root=tmp_path / "c3")
    with pytest.raises(ParameterError, match=r"no files"):
        D.with_urls("bonn", {"A.zip": "file:///x"})


@pytest.mark.needs_data
def test_fsdd_fetch_from_github_style_archive(tmp_path):
    src = _need("fsdd", "recordings")
    z = tmp_path / "fsdd.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("free-spoken-digit-dataset-1.0.9/README.md", "readme")
        for p in sorted((src / "recordings").iterdir()):
            zf.write(p, f"free-spoken-digit-dataset-1.0.9/recordings/{p.name}")
    info = D.with_urls("fsdd", {"free-spoken-digit-dataset-1.0.9.zip": z.as_uri()})
    got = D.fetch(info, root=tmp_path / "cache")
    assert len(list((got / "recordings").glob("*.wav"))) == 3000
    assert not (got / "recordings" / "README.md").exists()
    # a missing file is a content failure, not a silent partial dataset
    (got / "recordings" / "0_george_0.wav").unlink()
    assert D.verify("fsdd", got) == [f"{got / 'recordings'}: 2999 wav files, expected 3000"]


def test_values_hash_is_line_ending_independent(tmp_path):
    a, b = tmp_path / "a" / "Z001.txt", tmp_path / "b" / "Z001.txt"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_bytes(b"1\n-2\n3\n")
    b.write_bytes(b"1\r\n-2\r\n3\r\n")
    h = [values_hash([p], read_bonn_ints) for p in (a, b)]
    assert h[0] == h[1]
    assert h[0] == hashlib.sha256(b"Z001:3\n" + np.array([1, -2, 3], "<i8").tobytes()).hexdigest()


def test_registry_is_data_not_code(tmp_path):
    import tomllib
    from importlib import resources

    shipped = Path(str(resources.files("sigalex") / "registry"))
    raw = tomllib.loads((shipped / "datasets.toml").read_text(encoding="utf-8"))
    # every entry and value of REGISTRY is the shipped TOML, parsed
    assert sorted(D.REGISTRY) == sorted(raw)
    for name, entry in raw.items():
        info = D.REGISTRY[name]
        assert (info.title, info.licence, info.layout) == (
            entry["title"],
            entry["licence"],
            entry["layout"],
        )
        assert [f.url for f in info.files] == [f["url"] for f in entry.get("files", [])]
    assert dict(D.REGISTRY["bonn"].meta["content"]["values_sha256"]) == dict(
        raw["bonn"]["content"]["values_sha256"]
    )

    # an edited copy of the files gives edited entries, and verify() checks what they say
    copy = tmp_path / "registry"
    shutil.copytree(shipped, copy)
    fake = tmp_path / "bonn"
    for s in "ZONFS":
        (fake / s).mkdir(parents=True)
        (fake / s / f"{s}001.txt").write_text(f"1\n-2\n{ord(s)}\n")
    z_hash = values_hash([fake / "Z" / "Z001.txt"], read_bonn_ints)
    toml = (copy / "datasets.toml").read_text(encoding="utf-8")
    toml = toml.replace(raw["bonn"]["content"]["values_sha256"]["Z"], z_hash)
    toml = toml.replace("n_times = 4097", "n_times = 3").replace(
        "files_per_set = 100", "files_per_set = 1"
    )
    toml = toml.replace("v1.0.9", "v9.9.9")
    (copy / "datasets.toml").write_text(toml, encoding="utf-8")
    sums = copy / "chbmit-SHA256SUMS.txt"
    real = D.REGISTRY["chbmit"].sha256sums["chb01/chb01_03.edf"]
    sums.write_text(sums.read_text().replace(real, "f" * 64))
    edited = read_registry(copy)
    assert "v9.9.9" in edited["fsdd"].files[0].url
    assert edited["chbmit"].sha256sums["chb01/chb01_03.edf"] == "f" * 64
    assert edited["bonn"].meta["content"]["values_sha256"]["Z"] == z_hash
    problems = D.verify(edited["bonn"], fake)
    assert [p.split(":")[0] for p in problems] == [str(fake / s) for s in "ONFS"]
    assert all("sample values differ" in p for p in problems)
    assert len(D.verify("bonn", fake)) == 5  # the shipped entry: 1 file per set, not 100

    # entries are frozen; a change is a copy, and the shipped entry stays as it was
    info = D.REGISTRY["fsdd"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.title = "x"
    with pytest.raises(TypeError):
        info.meta["n_files"] = 1
    mirror = D.with_urls("fsdd", {info.files[0].name: "file:///mirror.zip"})
    assert mirror.files[0].url == "file:///mirror.zip"
    assert D.REGISTRY["fsdd"].files[0].url == raw["fsdd"]["files"][0]["url"]
    assert "fsdd" in D.REGISTRY and "fsddd" not in D.REGISTRY


def test_dataset_file_names():
    assert fsdd_name("recordings/7_jackson_32.wav") == ("7", "jackson", 32)
    with pytest.raises(DataError, match=r"not an FSDD file name"):
        fsdd_name("jackson_7.wav")
    assert bonn_set("bonn/N/N001.TXT") == "N"
    assert bonn_set("bonn/S/segment.txt") == "S"
    with pytest.raises(DataError, match=r"not a Bonn segment"):
        bonn_set("other/X001.txt")


def test_chbmit_edf_layout_labels_windows_from_the_summary(tmp_path):
    from sigalex.io import EdfRecording, write_edf
    from sigalex.synthetic import make_synthetic_recording

    case = tmp_path / "chb05"
    case.mkdir()
    for name, seizures in (("chb05_01", []), ("chb05_02", [(20.0, 30.0)])):
        rec = make_synthetic_recording(60.0, n_channels=4, seizures=seizures, seed=len(seizures))
        rec.annotations = []  # labels must come from the summary, not the EDF
        write_edf(case / f"{name}.edf", rec)
    (case / "chb05-summary.txt").write_text(
        "Data Sampling Rate: 256 Hz\n\n"
        "File Name: chb05_01.edf\nFile Start Time: 10:00:00\nFile End Time: 10:01:00\n"
        "Number of Seizures in File: 0\n\n"
        "File Name: chb05_02.edf\nFile Start Time: 10:01:00\nFile End Time: 10:02:00\n"
        "Number of Seizures in File: 1\nSeizure Start Time: 20 seconds\n"
        "Seizure End Time: 30 seconds\n"
    )
    other = tmp_path / "chb06"  # a case whose summary is missing: reported, not fatal
    other.mkdir()
    shutil.copy(case / "chb05_01.edf", other / "chb06_01.edf")
    with pytest.warns(UserWarning, match="could not be used"):
        ds = D.chbmit(tmp_path)
    assert [it.recording for it in ds.items] == ["chb05_01", "chb05_02"]
    assert ds.classes == ["background", "seizure"] and set(ds.groups) == {"chb05"}
    assert any("chb06_01.edf" in e and "summary" in e for e in ds.errors)
    assert isinstance(D.open_item(ds.items[1]), EdfRecording)
    ws = ds.windows(window_s=4.0, stride_s=2.0, min_overlap=0.5)
    sz = [(w.recording.endswith("chb05_02.edf"), w.start_s) for w in ws if w.label == "seizure"]
    # windows [s, s+4) at least half inside [20, 30): s = 18 … 28
    assert sz == [(True, float(s)) for s in range(18, 30, 2)]
    assert len(ws) == 2 * 29


# --- the dataset registry and recipes --------------------------------------------------------


@pytest.fixture
def scratch_registry(monkeypatch):
    """Datasets registered in a test are forgotten after it."""
    from sigalex.datasets import registry

    monkeypatch.setattr(registry, "_DATASETS", dict(registry._DATASETS))


def _recipe(cfg: Config | None = None, **data) -> Config:
    cfg = cfg or Config()
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data))


def test_a_registered_dataset_module_is_available_everywhere(
    tmp_path, monkeypatch, scratch_registry
):
    @D.register_dataset(
        "tiny",
        recipe_options=lambda cfg: {"sample_rate": cfg.data.sample_rate or 100.0},
        looks_present=lambda path: (path / "TINY").is_file(),
    )
    def tiny(root, *, sample_rate=100.0):
        """Files ``<label>-<n>.npy``; each is its own group."""
        root = Path(root)
        items = [
            D.Item(p, p.stem.split("-")[0], p.stem, p.stem, sample_rate=sample_rate)
            for p in sorted(root.glob("*.npy"))
        ]
        return D.DatasetIndex("tiny", root, items, ["a", "b"])

    rng = np.random.default_rng(0)
    for folder in (tmp_path / "mine", tmp_path / "home" / "tiny"):
        folder.mkdir(parents=True)
        np.save(folder / "a-1.npy", rng.standard_normal((2, 200)))
        np.save(folder / "b-1.npy", rng.standard_normal((2, 300)))
    (tmp_path / "home" / "tiny" / "TINY").touch()

    assert "tiny" in D.available_layouts() and D.LAYOUTS["tiny"] is tiny
    ds = D.load_dataset("tiny", tmp_path / "mine", sample_rate=50.0)
    assert [it.label for it in ds.items] == ["a", "b"] and ds.targets.tolist() == [0, 1]
    assert [w.end_s for w in ds.windows()] == [4.0, 6.0]  # opened at the item's rate
    # a recipe: data.root, options from the recipe through the dataset's own recipe_options
    got = D.from_config(_recipe(dataset="tiny", root=str(tmp_path / "mine"), sample_rate=25.0))
    assert got.root == tmp_path / "mine" and {it.sample_rate for it in got.items} == {25.0}
    # no root: found where the dataset says it looks present, as the built-in ones are
    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path / "home"))
    assert D.find_dataset("tiny") == tmp_path / "home" / "tiny"
    assert D.load_dataset("tiny").root == tmp_path / "home" / "tiny"
    assert D.from_config(_recipe(dataset="tiny")).items[0].sample_rate == 100.0
    with pytest.raises(ParameterError, match=r"'tiny' is already registered"):
        D.register_dataset("tiny")(tiny)

    # a dataset without a place of its own needs a root, as folder and manifest do
    D.register_dataset("rooted")(tiny)
    with pytest.raises(ConfigError, match=r"data.dataset = 'rooted' needs data.root"):
        D.from_config(_recipe(dataset="rooted"))
    with pytest.raises(ParameterError, match=r"layout 'rooted' needs root="):
        D.load_dataset("rooted")
    assert D.from_config(_recipe(dataset="rooted", root=str(tmp_path / "mine"))).name == "tiny"


def test_scratch_registry_forgets(scratch_registry):
    assert "tiny" not in D.available_layouts()  # the test above left nothing behind
    assert D.available_layouts() == ["bonn", "chbmit", "folder", "fsdd", "manifest", "synthetic"]


@pytest.mark.needs_data
def test_from_config_bonn_recipe_gives_the_500_segments(monkeypatch):
    _need("bonn", "Z")
    monkeypatch.setenv("SIGALEX_DATA", str(DATA))
    cfg = load_config(REPO / "pipelines" / "eeg-seizure.toml")
    ds = D.from_config(cfg)
    assert (ds.name, ds.root, len(ds)) == ("bonn", DATA / "bonn", 500)
    assert ds.classes == ["ABCD", "E"] and np.bincount(ds.targets).tolist() == [400, 100]
    assert len(set(ds.groups)) == 500 and {it.sample_rate for it in ds.items} == {173.61}
    five = D.from_config(_recipe(cfg, root=str(DATA / "bonn"), task="5class"))
    assert five.classes == ["A", "B", "C", "D", "E"] and len(five) == 500
    with pytest.raises(ConfigError, match=r"^data: unknown bonn task 'A-F'"):
        D.from_config(_recipe(cfg, task="A-F"))


def test_from_config_synthetic_writes_once_then_reuses(tmp_path, caplog, capsys):
    cfg = load_config(
        REPO / "pipelines" / "synthetic-seizure.toml",
        [f'output.dir="{tmp_path}"', "data.n_recordings=3", "data.duration_s=90"],
    )
    root = tmp_path / "synthetic-data"
    with caplog.at_level(logging.INFO, logger="sigalex.datasets"):
        ds = D.from_config(cfg)
    assert [r.getMessage() for r in caplog.records] == [
        f"writing 3 synthetic EDF recordings of 90 s to {root}"
    ]
    assert ds.root == root and ds.classes == ["background", "seizure"]
    assert [it.recording for it in ds.items] == ["sub-01_run-01", "sub-02_run-01", "sub-03_run-01"]
    assert [it.group for it in ds.items] == ["sub-01", "sub-02", "sub-03"]
    assert all(it.label is None and it.annotations for it in ds.items)
    written = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    assert sorted(written) == [
        f"sub-0{i}_run-01_{kind}" for i in (1, 2, 3) for kind in ("eeg.edf", "events.tsv")
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sigalex.datasets"):
        again = D.from_config(cfg)
    assert caplog.records == [] and again.items == ds.items
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == written  # nothing rewritten
    assert capsys.readouterr().out == ""  # library messages are logged, never printed
    labels = {w.label for w in again.windows(window_s=4.0, min_overlap=0.5)}
    assert labels == {"background", "seizure"}
    # data.root given: a generated dataset writes it there, even if it does not exist yet
    mine = D.from_config(_recipe(cfg, root=str(tmp_path / "mine"), n_recordings=1))
    assert mine.root == tmp_path / "mine" and len(mine) == 1
    with pytest.raises(ConfigError, match=r"^data: n_recordings=0"):
        D.from_config(_recipe(cfg, n_recordings=0))


def test_from_config_misses_say_what_to_do(tmp_path, monkeypatch):
    from sigalex.datasets import load

    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path / "empty"))
    with pytest.raises(
        ConfigError,
        match=r"data.dataset = 'bonnn' \(did you mean 'bonn'\?\): unknown dataset; "
        r"available: bonn, chbmit, folder, fsdd, manifest, synthetic$",
    ):
        D.from_config(_recipe(dataset="bonnn"))
    for name in ("folder", "manifest"):
        with pytest.raises(ConfigError, match=rf"data.dataset = '{name}' needs data.root"):
            D.from_config(_recipe(dataset=name))
    with pytest.raises(DataError, match=r"data.root = '.*nowhere': no such file or folder"):
        D.from_config(_recipe(dataset="bonn", root=str(tmp_path / "nowhere")))
    with pytest.raises(DataError) as err:
        D.from_config(_recipe(dataset="bonn", download=False))
    msg = str(err.value)
    assert "dataset 'bonn' not found locally; looked in" in msg and "SIGALEX_DATA" in msg
    assert msg.endswith("The recipe synthetic-seizure.toml needs no data.")

    def offline(name, **kw):
        raise DataError(f"could not download Z.zip of dataset {name!r} (no network)")

    monkeypatch.setattr(load, "fetch", offline)
    with pytest.raises(DataError) as err:
        D.from_config(_recipe(dataset="fsdd"))
    msg = str(err.value)
    assert msg.startswith("dataset 'fsdd' is neither found nor downloadable: could not download")
    assert msg.endswith(
        "Point SIGALEX_DATA (or data.root) at a local copy, or run "
        "pipelines/synthetic-seizure.toml, which needs no data."
    )
