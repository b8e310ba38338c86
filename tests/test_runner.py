"""`python -m tests` (the route without make): --lax and --shard K/N, as the platform jobs of the
GitHub workflow call it."""

import pytest

from tests import __main__ as runner


def test_shards_cover_every_chapter_once_and_balance_the_measured_times():
    notebooks = runner.chapter_notebooks()
    for count in (1, 2, 3):
        groups = runner.shards(notebooks, count)
        assert sorted(n for group in groups for n in group) == notebooks
    times = {"a": 100.0, "b": 90.0, "c": 60.0, "d": 40.0}
    assert runner.shards(list(times), 2, times) == [["a", "d"], ["b", "c"]]
    unmeasured = runner.shards(["a", "b", "new"], 2, {"a": 10.0, "b": 5.0})
    assert unmeasured == [["a", "b"], ["new"]], (
        "an unmeasured chapter counts as the longest measured one"
    )


def test_lax_and_shard_reach_pytest():
    (command,) = runner.commands("chapters", lax=True, shard=(2, 2))
    assert "--nbval-lax" in command and "--nbval" not in command
    assert [a for a in command if a.endswith(".ipynb")] == runner.shards(
        runner.chapter_notebooks(), 2
    )[1]
    (command,) = runner.commands("chapters")
    assert "--nbval" in command and command[-1] == "chapters"


@pytest.mark.parametrize(
    "arguments",
    [
        ["unit", "--lax"],
        ["chapters", "--shard"],
        ["chapters", "--shard", "3/2"],
        ["chapters", "--shard", "x"],
        ["everything"],
    ],
)
def test_bad_arguments_stop_with_a_message(arguments):
    with pytest.raises(SystemExit) as stopped:
        runner.main(arguments)
    assert isinstance(stopped.value.code, str) and stopped.value.code
