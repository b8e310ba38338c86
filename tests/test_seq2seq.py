"""utils.seq2seq (the date task as arrays) and utils.step_timing (the timed training steps)."""

import keras
import numpy as np
import pytest

from utils import seq2seq, step_timing


def test_the_decoder_reads_the_start_symbol_then_the_target_shifted_by_one():
    decoder_in, target = seq2seq.encode_targets(["2024-03-07"])
    assert seq2seq.to_text(target[0]) == "2024-03-07"
    assert seq2seq.to_text(decoder_in[0]) == "^2024-03-0"
    decoder_in, _ = seq2seq.encode_targets(["07-03-2024"], start="-")
    assert seq2seq.to_text(decoder_in[0]) == "-07-03-202"
    with pytest.raises(ValueError, match="start must be one of"):
        seq2seq.encode_targets(["2024-03-07"], start="x")


def test_texts_are_padded_with_zeros_and_unknown_characters_are_one():
    ids = seq2seq.encode_texts(["ab", "az"], {"a": 2, "b": 3})
    assert (
        ids.shape == (2, seq2seq.INPUT_LENGTH)
        and ids[0, :3].tolist() == [2, 3, 0]
        and ids[1, 1] == 1
    )
    with pytest.raises(ValueError, match="at most"):
        seq2seq.encode_texts(["x" * (seq2seq.INPUT_LENGTH + 1)], {})


def test_the_task_keeps_test_dates_out_of_training():
    task = seq2seq.date_task(0, sizes={"train": 300, "valid": 20, "test": 40})
    assert task.x_train.shape == (300, seq2seq.INPUT_LENGTH) and task.y_test.shape == (
        40,
        seq2seq.OUTPUT_LENGTH,
    )
    assert not (set(task.test_targets) | set(task.valid_targets)) & set(
        task.train_targets
    )
    assert [seq2seq.to_text(ids) for ids in task.y_test] == task.test_targets


def test_greedy_decoding_feeds_back_its_own_characters():
    """A fake model that writes, at each step, the character after the one it reads: the decoded text must be
    the chain the model writes from the start symbol on."""

    class NextCharacter:
        def predict(self, inputs, **options):
            decoder_ids = inputs[1]
            return keras.ops.convert_to_numpy(
                keras.ops.one_hot((decoder_ids % 11) + 1, 12)
            )

    written = seq2seq.greedy_decode(
        NextCharacter(), np.zeros((2, seq2seq.INPUT_LENGTH), "int32")
    )
    assert seq2seq.to_text(written[0]) == "0123456789"
    # from another start symbol the chain starts elsewhere: "5" is followed by "6"
    written = seq2seq.greedy_decode(
        NextCharacter(), np.zeros((1, seq2seq.INPUT_LENGTH), "int32"), start="5"
    )
    assert seq2seq.to_text(written[0]) == "6789-01234"
    with pytest.raises(ValueError, match="start must be one of"):
        seq2seq.greedy_decode(NextCharacter(), np.zeros((1, 3), "int32"), start="x")


def test_training_steps_run_one_step_per_length():
    steps = step_timing.training_steps(
        "attention", step_timing.SelfAttentionBlock, [4, 6], width=64, batch_size=2
    )
    assert sorted(steps) == [("attention", 4), ("attention", 6)]
    assert np.isfinite(steps["attention", 6]())
