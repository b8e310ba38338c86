"""utils.plots' diagram primitives and utils.diagrams' figures: the artists they add, bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from utils import diagrams, plots  # noqa: E402


@pytest.fixture
def ax():
    figure = plt.figure()
    yield figure.gca()
    plt.close(figure)


def plain_texts(ax):
    """The texts of `ax` that are not arrows (annotations are Text objects too)."""
    return [text for text in ax.texts if not isinstance(text, Annotation)]


def annotations(ax):
    return [text for text in ax.texts if isinstance(text, Annotation)]


def test_draw_box_adds_a_rectangle_and_its_text(ax):
    rectangle, label = plots.draw_box(ax, (2, 1), "σ", "C0", width=0.8, height=0.5)
    assert list(ax.patches) == [rectangle] and isinstance(rectangle, Rectangle)
    assert plain_texts(ax) == [label] and label.get_text() == "σ"
    assert (
        rectangle.get_xy() == (1.6, 0.75)
        and rectangle.get_width() == 0.8
        and rectangle.get_height() == 0.5
    )
    assert (
        label.get_position() == (2, 1)
        and label.get_ha() == "center"
        and label.get_va() == "center"
    )


def test_draw_box_with_an_edge_colour(ax):
    rectangle, _ = plots.draw_box(ax, (0, 0), "", "0.95", alpha=1.0, edgecolor="0.6")
    assert rectangle.get_facecolor()[:3] == pytest.approx((0.95, 0.95, 0.95))
    assert rectangle.get_edgecolor()[:3] == pytest.approx((0.6, 0.6, 0.6))


def test_draw_node_is_one_text_in_a_rounded_frame(ax):
    node = plots.draw_node(ax, (1, 1), "$h_1$")
    assert list(ax.texts) == [node] and not ax.patches
    assert node.get_bbox_patch() is not None


def test_draw_operator_adds_a_circle_and_its_symbol(ax):
    circle, label = plots.draw_operator(ax, (3, 2.8), "×", radius=0.22)
    assert (
        list(ax.patches) == [circle]
        and isinstance(circle, Circle)
        and circle.radius == 0.22
    )
    assert label.get_text() == "×" and label.get_position() == (3, 2.8)


def test_draw_arrow_is_an_annotation_from_start_to_end(ax):
    arrow = plots.draw_arrow(ax, (0, 0), (1, 2), color="C3", shrinkA=14)
    assert annotations(ax) == [arrow] and arrow.get_text() == ""
    assert arrow.xyann == (0, 0) and arrow.xy == (1, 2)  # the head is at `end`
    assert arrow.arrowprops["arrowstyle"] == "->" and arrow.arrowprops["shrinkA"] == 14
    assert "connectionstyle" not in arrow.arrowprops


def test_a_curved_arrow_for_feedback(ax):
    arrow = plots.draw_arrow(ax, (1, 0.9), (0, 0.9), curve=-0.4)
    assert arrow.arrowprops["connectionstyle"] == "arc3,rad=-0.4"


def test_draw_line_is_a_plain_polyline(ax):
    line = plots.draw_line(ax, [(0, 0), (1, 0), (1, 1)])
    assert (
        list(ax.lines) == [line]
        and list(line.get_xdata()) == [0, 1, 1]
        and not ax.texts
    )


def test_frame_diagram_sets_limits_title_and_hides_the_axes(ax):
    assert plots.frame_diagram(ax, (-1, 5), (0, 2), "A diagram") is ax
    assert ax.get_xlim() == (-1, 5) and ax.get_ylim() == (0, 2)
    assert ax.get_title() == "A diagram" and not ax.axison


def test_the_primitives_build_a_sequence_diagram(ax):
    """Chapter 1's kind of figure: inputs, states, outputs, arrows and a curved feedback arrow."""
    for t in range(3):
        plots.draw_box(ax, (t, -1.1), f"$x_{t + 1}$", "C2", width=0.5, height=0.5)
        plots.draw_box(ax, (t, 0), f"$h_{t + 1}$", "C0", width=0.6, height=0.6)
        plots.draw_box(ax, (t, 1.1), f"$y_{t + 1}$", "C1", width=0.5, height=0.5)
        plots.draw_arrow(ax, (t, -0.85), (t, -0.3))
        plots.draw_arrow(ax, (t, 0.3), (t, 0.85))
    plots.draw_arrow(ax, (0.3, 0.2), (-0.3, 0.2), curve=1.5)
    plots.frame_diagram(ax, (-0.8, 2.8), (-1.9, 1.6), "A sequence diagram")
    assert (
        len(ax.patches) == 9 and len(plain_texts(ax)) == 9 and len(annotations(ax)) == 7
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda ax: plots.draw_box(ax, (0, 0), "a", "C0", width=0),
            "width must be positive",
        ),
        (
            lambda ax: plots.draw_box(ax, (0, 0), "a", "C0", height=-1),
            "height must be positive",
        ),
        (
            lambda ax: plots.draw_box(ax, 3, "a", "C0"),
            r"center must be a pair of numbers",
        ),
        (
            lambda ax: plots.draw_node(ax, (0, 0, 0), "a"),
            r"center must be a pair of numbers",
        ),
        (
            lambda ax: plots.draw_operator(ax, (0, 0), "+", radius=0),
            "radius must be positive",
        ),
        (lambda ax: plots.draw_arrow(ax, (0, 0), (0, 0)), "two different points"),
        (
            lambda ax: plots.draw_arrow(ax, "ab", (0, 0)),
            "start must be a pair of numbers",
        ),
        (lambda ax: plots.draw_line(ax, [(0, 0)]), "at least two points"),
        (lambda ax: plots.frame_diagram(ax, (1, 0), (0, 1), "t"), "xlim must be"),
    ],
)
def test_primitives_reject_bad_input(ax, call, message):
    with pytest.raises(ValueError, match=message):
        call(ax)


def test_draw_unrolled_bptt(ax):
    assert diagrams.draw_unrolled_bptt(ax, steps=4) is ax
    assert ax.get_title() == "An RNN unrolled over 4 steps"
    texts = [text.get_text() for text in plain_texts(ax)]
    # h_0 and x, h, ℓ
    assert (
        sum(text.startswith("$") and "W_{hh}" not in text for text in texts)
        == 1 + 3 * 4
    )
    assert texts.count("$W_{hh}$") == 4
    # forward arrows, the red arrow down, three red arcs
    assert len(annotations(ax)) == 3 * 4 + 1 + 3
    assert (
        ax.get_xlabel() == "time step t"
        and ax.get_ylabel() == "layer of the unrolled graph"
    )
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [
        "forward pass (same weights at every step)",
        "gradient of $\\ell_{3}$ flowing back in time",
    ]


def test_draw_unrolled_bptt_with_one_step(ax):
    diagrams.draw_unrolled_bptt(ax, steps=1)
    assert (
        ax.get_title() == "An RNN unrolled over 1 steps"
        and len(annotations(ax)) == 3 + 1 + 1
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a whole number of at least 1"),
        ({"steps": 2.5}, "steps must be"),
        (
            {"steps": 4, "loss_step": 5},
            "loss_step must be a step between 1 and steps = 4",
        ),
        ({"steps": 4, "loss_step": 0}, "loss_step must be"),
    ],
)
def test_draw_unrolled_bptt_rejects_bad_steps(ax, kwargs, message):
    with pytest.raises(ValueError, match=message):
        diagrams.draw_unrolled_bptt(ax, **kwargs)


def test_draw_lstm_cell(ax):
    assert diagrams.draw_lstm_cell(ax) is ax
    assert ax.get_title().startswith("One LSTM step") and not ax.axison
    texts = [text.get_text() for text in plain_texts(ax)]
    for label in [
        "$f_t$",
        "$i_t$",
        "$g_t$",
        "$o_t$",
        "$c_{t-1}$",
        "$c_t$",
        "$h_t$",
        "$x_t$",
    ]:
        assert label in texts
    # the previous hidden state has its own input path, not only a caption
    assert "$h_{t-1}$" in texts
    circles = [patch for patch in ax.patches if isinstance(patch, Circle)]
    boxes = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
    # the cell, four gates, tanh of c_t
    assert len(circles) == 4 and len(boxes) == 1 + 4 + 1
    # gate inputs, the cell's wiring, h_{t-1} and x_t
    assert len(annotations(ax)) >= 4 + 11 + 2


def test_draw_lstm_cell_h_prev_reaches_every_gate(ax):
    """The h_{t-1} wire runs under all four gates, and each gate has an arrow up from it."""
    diagrams.draw_lstm_cell(ax)
    wire_y = -0.25
    (wire,) = [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2 and set(line.get_ydata()) == {wire_y}
    ]
    gate_xs = [1, 2.3, 3.6, 4.9]
    assert min(wire.get_xdata()) < min(gate_xs) and max(wire.get_xdata()) >= max(
        gate_xs
    )
    up_from_wire = {
        arrow.xyann[0]
        for arrow in annotations(ax)
        if arrow.xyann[1] == wire_y and arrow.xy[1] > wire_y
    }
    assert set(gate_xs) <= up_from_wire
    into_wire = [arrow for arrow in annotations(ax) if arrow.xy[1] == wire_y]
    assert len(into_wire) == 2  # h_{t-1} from the left, x_t from below


def test_draw_bidirectional(ax):
    words = ["Apple", "trees", "are", "tall"]
    assert diagrams.draw_bidirectional(ax, words) is ax
    assert ax.get_title().startswith("A bidirectional RNN") and not ax.axison
    assert len(ax.patches) == 2 * len(words)  # a forward and a backward state per word
    assert len(annotations(ax)) == 4 * len(words) + 2 * (len(words) - 1)
    texts = [text.get_text() for text in plain_texts(ax)]
    assert (
        "$x_{1}$\nApple" in texts and "forward RNN" in texts and "backward RNN" in texts
    )
    assert ax.get_xlim() == (-0.8, pytest.approx(9.6))


def test_draw_bidirectional_needs_words(ax):
    with pytest.raises(ValueError, match="words is empty"):
        diagrams.draw_bidirectional(ax, [])


def test_sequence_diagram_patterns():
    from utils.diagrams import draw_sequence_diagram

    fig, ax = plt.subplots()
    draw_sequence_diagram(ax, 4, [0], range(4), "autoregressive", feedback=True)
    assert ax.get_title() == "autoregressive"
    # states, one input, three fed-back inputs, outputs
    assert len(ax.patches) == 4 + 1 + 3 + 4
    feedback = [
        artist
        for artist in ax.texts
        if isinstance(artist, Annotation)
        and artist.arrowprops.get("connectionstyle", "").startswith("arc3")
    ]
    assert len(feedback) == 3  # each output but the last feeds the next step
    plt.close(fig)

    fig, ax = plt.subplots()
    draw_sequence_diagram(
        ax, 6, range(3), range(3, 6), "encoder-decoder", decoder_start=3
    )
    assert sum(text.get_text() == "c" for text in ax.texts) == 3
    plt.close(fig)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_steps": 0},
        {"num_steps": 3, "input_steps": [5]},
        {"num_steps": 3, "decoder_start": 3},
    ],
)
def test_sequence_diagram_rejects_bad_input(kwargs):
    from utils.diagrams import draw_sequence_diagram

    arguments = {
        "num_steps": 3,
        "input_steps": [0],
        "output_steps": [0],
        "title": "t",
    } | kwargs
    fig, ax = plt.subplots()
    with pytest.raises(ValueError):
        draw_sequence_diagram(ax, **arguments)
    plt.close(fig)


def text_at(ax, label):
    """The position of the one plain text of `ax` that reads `label`."""
    (position,) = [
        text.get_position() for text in plain_texts(ax) if text.get_text() == label
    ]
    return position


@pytest.mark.parametrize("steps", [1, 4])
def test_draw_rolled_and_unrolled(ax, steps):
    assert diagrams.draw_rolled_and_unrolled(ax, steps=steps) is ax
    assert (
        ax.get_title()
        == "A recurrent network rolled (a loop) and unrolled (one copy per step)"
    )
    assert not ax.axison
    texts = [text.get_text() for text in plain_texts(ax)]
    for name in ("x", "h", "y"):  # the rolled cell (index t) and one copy per step
        assert all(
            f"${name}_{{{index}}}$" in texts for index in ["t", *range(1, steps + 1)]
        )
    assert "$h_0$" in texts
    # the same three matrices on the loop and every copy
    for weight in ("$W_{xh}$", "$W_{hh}$", "$W_{hy}$"):
        assert texts.count(weight) == steps + 1
    # arrows: x -> h -> y in the rolled cell and in every copy, the loop's head, "unroll", h_{t-1} -> h_t
    assert len(annotations(ax)) == 2 + 1 + 1 + 3 * steps


def test_draw_rolled_and_unrolled_labels_every_recurrent_arrow(ax):
    """Each horizontal arrow between two states carries W_hh at its middle; the loop carries one too."""
    diagrams.draw_rolled_and_unrolled(ax, steps=3)
    # not the thick "unroll" arrow
    recurrent = [
        arrow
        for arrow in annotations(ax)
        if arrow.xyann[1] == arrow.xy[1] == 0 and arrow.arrowprops["lw"] != 2.0
    ]
    w_hh = [
        text.get_position() for text in plain_texts(ax) if text.get_text() == "$W_{hh}$"
    ]
    assert len(recurrent) == 3
    for arrow in recurrent:
        middle = (arrow.xyann[0] + arrow.xy[0]) / 2
        assert any(x == pytest.approx(middle) and 0 < y < 0.3 for x, y in w_hh)
    # the rolled cell's self-loop
    (loop,) = [line for line in ax.lines if len(line.get_xdata()) > 10]
    delays = [
        patch
        for patch in ax.patches
        if isinstance(patch, Rectangle) and patch.get_width() < 0.2
    ]
    assert len(delays) == 1  # the delay mark sits on the loop, at its rightmost point
    delay_x = delays[0].get_x() + delays[0].get_width() / 2
    assert max(loop.get_xdata()) == pytest.approx(delay_x)
    # the loop starts and ends at the right edge of h_t
    assert min(loop.get_xdata()) >= 0.35 - 1e-9


@pytest.mark.parametrize("steps", [0, 2.5, True])
def test_draw_rolled_and_unrolled_rejects_bad_steps(ax, steps):
    with pytest.raises(ValueError, match="steps must be a whole number of at least 1"):
        diagrams.draw_rolled_and_unrolled(ax, steps=steps)


def test_draw_gru_cell(ax):
    assert diagrams.draw_gru_cell(ax) is ax
    assert ax.get_title().startswith("One GRU step") and not ax.axison
    texts = [text.get_text() for text in plain_texts(ax)]
    for label in [
        "$h_{t-1}$",
        "$h_t$",
        "$x_t$",
        "$z_t$",
        "$r_t$",
        r"$\tilde h_t$",
        "tanh",
        "1 −",
        r"$h_{t-1}U_{\tilde h}+b^h$",
        r"$x_tW_{\tilde h}+b^x$",
    ]:
        assert label in texts
    assert texts.count("σ") == 2  # two gates
    # the update, "1 −" included
    assert any(r"(1 - z_t) \odot \tilde h_t" in text for text in texts)
    circles = [patch for patch in ax.patches if isinstance(patch, Circle)]
    boxes = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
    # × z_t and + on the state line, × r_t, + x_t W, × (1 - z_t)
    assert len(circles) == 5
    # the cell, two gates, the two products, tanh, "1 −"
    assert len(boxes) == 1 + 2 + 2 + 1 + 1


def test_draw_gru_cell_wiring(ax):
    """The state line runs h_{t-1} -> × -> + -> h_t; the reset gate and the recurrent product meet in
    one ×, which feeds the + that x_t W joins; z_t reaches both × on the state line and "1 −".
    """
    diagrams.draw_gru_cell(ax)
    symbol_at = {
        text.get_position(): text.get_text()
        for text in plain_texts(ax)
        if text.get_text() in "×+"
    }
    operators = {
        center: symbol_at[center]
        for center in (
            circle.center for circle in ax.patches if isinstance(circle, Circle)
        )
    }

    def into(point):
        """The operator whose circle an arrow ends on (or None)."""
        hits = [
            center
            for center in operators
            if abs(point[0] - center[0]) ** 2 + abs(point[1] - center[1]) ** 2
            <= 0.23**2
        ]
        return hits[0] if hits else None

    top = text_at(ax, "$h_{t-1}$")[1]
    on_state_line = sorted(center for center in operators if center[1] == top)
    assert [operators[center] for center in on_state_line] == ["×", "+"]
    state_arrows = sorted(
        (arrow.xyann, arrow.xy)
        for arrow in annotations(ax)
        if arrow.xyann[1] == arrow.xy[1] == top
    )
    assert len(state_arrows) == 3 and state_arrows[-1][1][0] < text_at(ax, "$h_t$")[0]
    # the reset gate's output and the recurrent product go into the same ×
    r_gate_x = text_at(ax, "$r_t$")[0] - 0.45
    recurrent_box = text_at(ax, r"$h_{t-1}U_{\tilde h}+b^h$")
    from_r = [
        into(arrow.xy)
        for arrow in annotations(ax)
        if arrow.xyann[0] == pytest.approx(r_gate_x) and arrow.xyann[1] > 0.6
    ]
    from_product = [
        into(arrow.xy)
        for arrow in annotations(ax)
        if arrow.xyann[0] == recurrent_box[0] and arrow.xyann[1] < recurrent_box[1]
    ]
    assert (
        from_r == from_product and from_r[0] is not None and operators[from_r[0]] == "×"
    )
    # x_t W goes into the + after that ×, not into the × itself
    input_box = text_at(ax, r"$x_tW_{\tilde h}+b^x$")
    # the arrow out of the box's top
    (from_input,) = [
        into(arrow.xy)
        for arrow in annotations(ax)
        if arrow.xyann[0] == input_box[0]
        and input_box[1] < arrow.xyann[1] < input_box[1] + 0.3
    ]
    assert operators[from_input] == "+" and from_input[1] == from_r[0][1]
    # z_t's wire leaves the top of its gate and ends on top of the "1 −" box
    z_gate_x = text_at(ax, "$z_t$")[0] - 0.45
    one_minus = text_at(ax, "1 −")
    (z_wire,) = [line for line in ax.lines if line.get_xdata()[0] == z_gate_x]
    assert z_wire.get_ydata()[0] > 0.6 and (
        z_wire.get_xdata()[-1],
        z_wire.get_ydata()[-1],
    ) == pytest.approx((one_minus[0], one_minus[1] + 0.18))
    keep = on_state_line[0]
    # z_t scales h_{t-1} on the state line
    assert any(
        arrow.xyann[0] == keep[0]
        and into(arrow.xy) == keep
        and arrow.xyann[1] in z_wire.get_ydata()
        for arrow in annotations(ax)
    )


def test_draw_encoder_decoder(ax):
    source, target = ["7", "March", "2024"], ["2024", "03", "07"]
    assert diagrams.draw_encoder_decoder(ax, source, target) is ax
    assert ax.get_title().startswith("Without attention") and not ax.axison
    assert len(ax.patches) == len(source) + len(target)  # one box per state
    texts = [text.get_text() for text in plain_texts(ax)]
    assert texts.count("^") == 1 and "March" in texts and "2024" in texts
    assert not ax.lines  # no context without attention


def test_draw_encoder_decoder_with_attention(ax):
    diagrams.draw_encoder_decoder(
        ax, ["7", "March", "2024"], ["2024", "03", "07"], 0, [0.1, 0.1, 0.8]
    )
    assert ax.get_title().startswith("With attention")
    assert len(ax.patches) == 3 + 3 + 1  # the states and the context c
    widths = [line.get_linewidth() for line in ax.lines]
    assert len(widths) == 3 and widths[2] == max(widths) > widths[0] == widths[1]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"source": [], "target": ["a"]}, "at least one token"),
        ({"source": ["a"], "target": ["b"], "attend_step": 1}, "attend_step"),
        ({"source": ["a", "b"], "target": ["c"], "weights": [1.0]}, "weights"),
        ({"source": ["a"], "target": ["c"], "weights": [-1.0]}, "weights"),
    ],
)
def test_draw_encoder_decoder_rejects_bad_input(ax, arguments, message):
    with pytest.raises(ValueError, match=message):
        diagrams.draw_encoder_decoder(ax, **arguments)
