"""The date task of chapters 5 and 7 as arrays, and the code both chapters build, train and decode with.

Chapter 5 explains each piece where it introduces it (and prints the functions' code); chapter 7 trains
a transformer on the same arrays and compares it with chapter 5's LSTM encoder-decoder.

Encoder input: the text's characters as ids (0 is padding, 1 an unknown character), padded at the end
to INPUT_LENGTH. Decoder input: the start symbol "^", then the ISO date shifted by one (teacher
forcing). Target: the ten characters of the ISO date, from OUTPUT_ALPHABET.
"""

import time
from dataclasses import dataclass

import keras
import numpy as np

from utils.book import EpochLogger
from utils.dates import make_date_pairs

INPUT_LENGTH, OUTPUT_LENGTH = 30, 10
# "^": the start symbol the decoder reads first (by default)
OUTPUT_ALPHABET = "^0123456789-"
OUTPUT_IDS = {char: index for index, char in enumerate(OUTPUT_ALPHABET)}
SIZES = {"train": 20_000, "valid": 500, "test": 2_000}


@dataclass
class DateTask:
    """Texts, ISO targets, languages and their encodings for the three splits."""

    train_texts: list
    train_targets: list
    train_locales: list
    valid_texts: list
    valid_targets: list
    test_texts: list
    test_targets: list
    test_locales: list
    input_alphabet: list
    input_ids: dict
    x_train: np.ndarray
    decoder_in_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    decoder_in_test: np.ndarray
    y_test: np.ndarray


def encode_texts(texts, input_ids):
    """Character ids, padded with zeros at the end to INPUT_LENGTH; 1 for a character not
    in input_ids."""
    ids = np.zeros((len(texts), INPUT_LENGTH), dtype="int32")
    for row, text in enumerate(texts):
        if len(text) > INPUT_LENGTH:
            raise ValueError(
                f"{text!r} has {len(text)} characters; the encoder reads at most"
                f" {INPUT_LENGTH}"
            )
        ids[row, : len(text)] = [input_ids.get(char, 1) for char in text]
    return ids


def encode_targets(targets, start="^"):
    """Decoder inputs (the start symbol, then the target shifted by one) and decoder
    targets. Any output character can serve as the start symbol (chapter 5 uses "-" to
    ask for the day first)."""
    if start not in OUTPUT_IDS:
        raise ValueError(f"start must be one of {OUTPUT_ALPHABET!r}, got {start!r}")
    target_ids = np.array(
        [[OUTPUT_IDS[char] for char in target] for target in targets], dtype="int32"
    )
    first = np.full((len(targets), 1), OUTPUT_IDS[start], dtype="int32")
    return np.concatenate([first, target_ids[:, :-1]], axis=1), target_ids


def date_task(seed, sizes=SIZES):
    """The pairs of `utils.dates` for the three splits, drawn with `seed`, and their
    encodings."""
    train_texts, train_targets, train_locales = make_date_pairs(
        sizes["train"], "train", seed
    )
    valid_texts, valid_targets, _ = make_date_pairs(sizes["valid"], "valid", seed)
    test_texts, test_targets, test_locales = make_date_pairs(
        sizes["test"], "test", seed
    )
    input_alphabet = sorted(set("".join(train_texts)))
    # 0: padding, 1: unknown
    input_ids = {char: index + 2 for index, char in enumerate(input_alphabet)}
    decoder_in_train, y_train = encode_targets(train_targets)
    decoder_in_test, y_test = encode_targets(test_targets)
    return DateTask(
        train_texts,
        train_targets,
        train_locales,
        valid_texts,
        valid_targets,
        test_texts,
        test_targets,
        test_locales,
        input_alphabet,
        input_ids,
        x_train=encode_texts(train_texts, input_ids),
        decoder_in_train=decoder_in_train,
        y_train=y_train,
        x_valid=encode_texts(valid_texts, input_ids),
        y_valid=encode_targets(valid_targets)[1],
        x_test=encode_texts(test_texts, input_ids),
        decoder_in_test=decoder_in_test,
        y_test=y_test,
    )


def to_text(ids):
    return "".join(OUTPUT_ALPHABET[i] for i in ids)


def build_seq2seq(vocabulary_size, with_attention, embedding_size=32, hidden_size=64):
    """Character encoder-decoder with LSTMs; returns (training model, attention-weights
    model or None)."""
    encoder_input = keras.Input((INPUT_LENGTH,), dtype="int32", name="text")
    decoder_input = keras.Input((OUTPUT_LENGTH,), dtype="int32", name="previous_chars")
    embedded_text = keras.layers.Embedding(
        vocabulary_size, embedding_size, mask_zero=True
    )(encoder_input)
    encoder_states, state_h, state_c = keras.layers.LSTM(
        hidden_size, return_sequences=True, return_state=True
    )(embedded_text)
    embedded_prev = keras.layers.Embedding(len(OUTPUT_ALPHABET), embedding_size)(
        decoder_input
    )
    decoder_states = keras.layers.LSTM(hidden_size, return_sequences=True)(
        embedded_prev, initial_state=[state_h, state_c]
    )
    weights = None
    if with_attention:
        context, weights = keras.layers.Attention()(
            [decoder_states, encoder_states], return_attention_scores=True
        )
        decoder_states = keras.layers.Concatenate()([decoder_states, context])
    logits = keras.layers.Dense(len(OUTPUT_ALPHABET))(decoder_states)
    model = keras.Model([encoder_input, decoder_input], logits)
    return model, (
        keras.Model([encoder_input, decoder_input], weights) if with_attention else None
    )


def greedy_decode(model, encoder_ids, start="^"):
    """Write the ten output characters one at a time after the start symbol `start`,
    each time feeding back the model's own prediction."""
    if start not in OUTPUT_IDS:
        raise ValueError(f"start must be one of {OUTPUT_ALPHABET!r}, got {start!r}")
    decoder_ids = np.zeros((len(encoder_ids), OUTPUT_LENGTH + 1), dtype="int32")
    decoder_ids[:, 0] = OUTPUT_IDS[start]
    for step in range(OUTPUT_LENGTH):
        logits = model.predict(
            [encoder_ids, decoder_ids[:, :OUTPUT_LENGTH]], batch_size=500, verbose=0
        )
        decoder_ids[:, step + 1] = logits[:, step].argmax(axis=-1)
    return decoder_ids[:, 1:]


class ValidationExactMatch(keras.callbacks.Callback):
    """After each epoch, greedy-decode the validation dates and log the fraction written
    exactly."""

    def __init__(self, x_valid, y_valid):
        super().__init__()
        self.x_valid, self.y_valid = x_valid, y_valid
        self.history, self.seconds = [], 0.0

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        written = greedy_decode(self.model, self.x_valid)
        self.history.append(float((written == self.y_valid).all(axis=1).mean()))
        logs["valid_exact"] = self.history[-1]
        self.seconds += time.perf_counter() - start


def compile_and_fit(
    model,
    name,
    task,
    epochs=3,
    batch_size=256,
    learning_rate=2e-2,
    check_each_epoch=True,
):
    """Train on the task's dates; return the training seconds (without the checks) and the
    exact match after each epoch (an empty list without the checks)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    exact_match = ValidationExactMatch(task.x_valid, task.y_valid)
    callbacks = (
        [exact_match, EpochLogger(1, name)]
        if check_each_epoch
        else [EpochLogger(1, name)]
    )
    start = time.perf_counter()
    model.fit(
        [task.x_train, task.decoder_in_train],
        task.y_train,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=callbacks,
    )
    return time.perf_counter() - start - exact_match.seconds, exact_match.history
