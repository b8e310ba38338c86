"""Chapters refer to each other by number; each number must name the chapter whose topic the text names.

TOPICS gives each chapter's file and words that belong to its topic. For every mention of a chapter
by number ("chapter 7", "Chapter 7's", "chapters 5 and 7", "ch. 4") in the chapters, the glossary,
the README, utils/ and data/README.md, the clause around the mention is searched for the topic words
of every chapter: when it names the topic of some chapter and of none of the chapters it cites, the
number is wrong ("chapter 6's transformer" fails; "chapter 7's transformer" passes). A mention whose
clause names no topic is not judged, and the test requires that most mentions are judged, so that it
cannot pass by finding nothing. Links `[chapter N](NN_topic.ipynb)` must point at chapter N's file,
and "chapter N, section M" must name a section that chapter N has.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

TOPICS = {
    1: (
        "01_feedforward_vs_rnn",
        [
            "feedforward",
            "persistence",
            "seattle",
            "weather",
            "simplernn",
            "length test",
            "generation one step",
            "sine",
            "temperature",
            "linear regression",
            "two tokens",
            "far apart",
            "pattern",
            "sequence diagram",
            "forecast",
            "return_sequences",
            "shapes of recurrent",
            "row-vector",
            "one-to-many",
            "autoregressive",
            "w_{xh}",
            "recurrence $h_t",
        ],
    ),
    2: (
        "02_bptt",
        [
            "backpropagation through time",
            "bptt",
            "vanishing",
            "exploding",
            "truncated",
            "orthogonal",
            "gradient",
            "simplernn",
            "many steps",
            "recall task",
            "one-bit",
            "lag",
            "mixed-lag",
            "singular value",
            "clipping",
            "stateful",
            "sequential steps",
            "long gap",
            "spectral radius",
            "hand-set",
            "shrinks geometrically",
        ],
    ),
    3: (
        "03_lstm_gru",
        [
            "gate",
            "gated",
            "cudnn",
            "forget",
            "language model",
            "n-gram",
            "shakespeare",
            "lstm and gru",
            "character model",
            "one character at a time",
            "char_windows",
            "unigram",
            "bits per character",
            "tragedies",
        ],
    ),
    4: (
        "04_bidirectional",
        [
            "bidirectional",
            "masking",
            "padding",
            "bucketing",
            "bigru",
            "word boundar",
            "equal-budget",
            "equal budget",
            "bag of words",
            "movie",
            "race between families",
            "equal parameter",
        ],
    ),
    5: (
        "05_attention",
        [
            "date",
            "encoder-decoder",
            "encoder–decoder",
            "teacher forcing",
            "greedy",
            "additive",
            "bahdanau",
            "luong",
            "wrong month",
            "bottleneck",
            "attention",
            "decoder",
            "softmax",
            "true previous",
        ],
    ),
    6: (
        "06_translation",
        [
            "translation",
            "bleu",
            "beam",
            "parallel text",
            "subword",
            "sentencepiece",
            "word alignment",
            "fixed-context",
            "sacrebleu",
            "exposure bias",
            "verses",
        ],
    ),
    7: (
        "07_transformer",
        [
            "transformer",
            "self-attention",
            "multi-head",
            "multiheadattention",
            "positional",
            "post-ln",
            "pre-ln",
            "pre-norm",
            "warm",
            "sequential steps",
            "causal attention",
            "gap opens",
            "softmax",
        ],
    ),
    8: (
        "08_choosing_a_model",
        [
            "choosing",
            "receptive field",
            "latch",
            "dropout",
            "early stopping",
            "layer normalisation",
            "climatology",
            "convolution",
            "training well",
            "compare close models",
            "strongest cheap baseline",
            "forecast",
            "baselines before",
            "stream was silent",
        ],
    ),
    9: ("09_music", ["chorale", "bach", "piano roll", "music"]),
    10: (
        "10_production",
        [
            "production",
            "savedmodel",
            "tf.distribute",
            "mirroredstrategy",
            "checkpoint",
            "serving",
            "export",
        ],
    ),
    11: (
        "11_linear_recurrences",
        [
            "linear recurrence",
            "linear rnn",
            "parallel scan",
            "scan",
            "mingru",
            "state-space",
            "key-value cache",
            "linear attention",
            "associative_scan",
        ],
    ),
}
WORD_START = {
    number: [re.compile(r"(?<![\w-])" + re.escape(word)) for word in words]
    for number, (_, words) in TOPICS.items()
}

MENTION = re.compile(
    r"\b(?:[Cc]hapters?|ch\.)\s+(\d+)((?:(?:,\s*|\s+and\s+|\s+or\s+|\s+to\s+)\d{1,2}\b(?![.,]\d))*)"
)
SECTION = re.compile(r"\b[Cc]hapter\s+(\d+),\s+sections?\s+(\d+)")
LINK = re.compile(r"\[[Cc]hapter\s+(\d+)\]\((\d\d_\w+)\.ipynb")


def texts():
    """{name: text} of every file whose prose may cite a chapter, comment markers removed."""
    files = [
        *sorted(CHAPTERS.glob("[0-9][0-9]_*.py")),
        CHAPTERS / "glossary.md",
        ROOT / "README.md",
        ROOT / "data" / "README.md",
        *sorted((ROOT / "utils").glob("*.py")),
    ]
    found = {}
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        found[str(path.relative_to(ROOT))] = "\n".join(
            re.sub(r"^\s*#+ ?", "", line) for line in lines
        )
    return found


def clause(text, start, end):
    """The clause around text[start:end]: back to the last . ; : , ( ) or blank line, on to the next . ; ( )
    or the next chapter cited (a parenthesis right after the mention is taken in whole).
    """
    left = max(
        text.rfind(mark, 0, start)
        for mark in (". ", ";", ":", ",", "(", ")", "\n\n", "|")
    )
    rest = text[end:]
    if rest.lstrip().startswith("("):
        close = rest.find(")")
        return text[left + 1 : end + (close + 1 if close >= 0 else 150)]
    stops = [
        index
        for index in (rest.find(mark) for mark in (". ", ";", "(", ")", "\n\n", "|"))
        if index >= 0
    ]
    # up to the next chapter cited
    stops += [match.start() for match in MENTION.finditer(rest)][:1]
    return text[left + 1 : end + min(stops + [150])]


def topics_named(window):
    lowered = " ".join(window.lower().split())
    return {
        number
        for number, patterns in WORD_START.items()
        if any(p.search(lowered) for p in patterns)
    }


def mentions(text):
    """(numbers cited, clause) for every mention of chapters by number, but for the links `[chapter N](file)`
    (test_links_... and tests/test_glossary.py check those)."""
    for match in MENTION.finditer(text):
        if text[match.start() - 1 : match.start()] == "[":
            continue
        numbers = [int(match.group(1)), *map(int, re.findall(r"\d+", match.group(2)))]
        yield numbers, clause(text, match.start(), match.end())


def wrong_mentions(text):
    wrong, judged, total = [], 0, 0
    for numbers, window in mentions(text):
        total += 1
        if any(number not in TOPICS for number in numbers):
            wrong.append(f"no chapter {numbers}: {' '.join(window.split())!r}")
            continue
        named = topics_named(window)
        if named:
            judged += 1
            if not named & set(numbers):
                wrong.append(
                    f"cites {numbers} about the topic of {sorted(named)}:"
                    f" {' '.join(window.split())!r}"
                )
    return wrong, judged, total


def test_every_chapter_in_the_table_exists_and_every_chapter_is_in_it():
    files = sorted(path.stem for path in CHAPTERS.glob("[0-9][0-9]_*.py"))
    assert files == [name for name, _ in TOPICS.values()]
    assert all(int(name[:2]) == number for number, (name, _) in TOPICS.items())


def test_chapter_numbers_name_the_topic_of_the_sentence():
    problems, judged, total = [], 0, 0
    for name, text in texts().items():
        wrong, judged_here, total_here = wrong_mentions(text)
        problems += [f"{name}: {problem}" for problem in wrong]
        judged, total = judged + judged_here, total + total_here
    assert not problems, "\n".join(problems)
    assert judged >= 0.6 * total, (
        f"only {judged} of {total} mentions name a topic: extend TOPICS"
    )


def test_links_to_chapters_point_at_the_chapter_of_that_number():
    for name, text in texts().items():
        for number, stem in LINK.findall(text):
            assert TOPICS[int(number)][0] == stem, (
                f"{name}: [chapter {number}] links to {stem}.ipynb"
            )


def section_numbers(stem):
    source = (CHAPTERS / f"{stem}.py").read_text(encoding="utf-8")
    return {int(number) for number in re.findall(r"^# ## (\d+)\.", source, flags=re.M)}


def test_sections_cited_by_number_exist():
    for name, text in texts().items():
        for chapter, section in SECTION.findall(text):
            stem = TOPICS[int(chapter)][0]
            assert int(section) in section_numbers(stem), (
                f"{name}: chapter {chapter} has no section {section}"
            )


@pytest.mark.parametrize(
    "sentence, fails",
    [
        ("Chapter 7's transformer is trained with teacher forcing.", False),
        ("Chapter 6's transformer is trained with teacher forcing.", True),
        ("the latch task of chapter 8.", False),
        ("the latch task of chapter 11.", True),
        ("prerequisites: chapter 3 (GRU), chapter 4 (masking).", False),
        ("prerequisites: chapter 4 (GRU), chapter 3 (masking).", True),
        ("as in chapter 2.", False),  # names no topic: not judged
        ("chapters 7 and 11 measure the key-value cache.", False),
        ("see chapter 12.", True),
    ],
)
def test_the_check_catches_a_wrong_number(sentence, fails):
    wrong, _, _ = wrong_mentions(sentence)
    assert bool(wrong) == fails, wrong
