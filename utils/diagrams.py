"""The box-and-arrow figures of the chapters, one function per figure.

Each function draws on the Axes it is given, sets the title and returns the Axes, e.g.
`draw_lstm_cell(plt.figure(figsize=(9, 4.6)).gca())`. They are built from the primitives in
utils.plots (draw_box, draw_node, draw_operator, draw_arrow, draw_line, frame_diagram).
"""

import math

from utils.plots import (
    draw_arrow,
    draw_box,
    draw_line,
    draw_node,
    draw_operator,
    frame_diagram,
)


def draw_unrolled_bptt(ax, steps=4, loss_step=None):
    """Chapter 2: an RNN unrolled over `steps` steps, inputs at the bottom, states in the middle,
    per-step losses on top; black arrows are the forward pass, red ones the gradient of the loss at
    step `loss_step` (default: step 3, or the last step if there are fewer) flowing back in time.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}")
    loss_step = min(3, steps) if loss_step is None else loss_step
    if not isinstance(loss_step, int) or not 1 <= loss_step <= steps:
        raise ValueError(
            f"loss_step must be a step between 1 and steps = {steps}, got {loss_step!r}"
        )
    draw_node(ax, (0, 1), "$h_0$")
    for t in range(1, steps + 1):
        for kind, row in (("x", 0), ("h", 1), ("ℓ", 2)):
            draw_node(ax, (t, row), f"${kind}_{{{t}}}$")
    forward = {"color": "k", "lw": 1.0, "shrinkA": 14, "shrinkB": 14}
    for t in range(1, steps + 1):
        draw_arrow(ax, (t, 0), (t, 1), **forward)
        draw_arrow(ax, (t, 1), (t, 2), **forward)
        draw_arrow(ax, (t - 1, 1), (t, 1), **forward)
        ax.text(t - 0.5, 1.1, "$W_{hh}$", ha="center", fontsize=9)
    back = forward | {"color": "C3"}
    draw_arrow(ax, (loss_step + 0.15, 2), (loss_step + 0.15, 1), **back)
    for t in range(loss_step, 0, -1):
        draw_arrow(ax, (t, 0.9), (t - 1, 0.9), curve=-0.4, **back)
    ax.plot([], [], "k-", label="forward pass (same weights at every step)")
    ax.plot(
        [],
        [],
        "-",
        color="C3",
        label=f"gradient of $\\ell_{{{loss_step}}}$ flowing back in time",
    )
    ax.set(
        xlim=(-0.5, steps + 0.5),
        ylim=(-0.4, 3.0),
        xlabel="time step t",
        ylabel="layer of the unrolled graph",
        yticks=[0, 1, 2],
        yticklabels=["input", "state", "loss"],
        title=f"An RNN unrolled over {steps} steps",
    )
    ax.grid(False)
    ax.legend(loc="upper center", ncol=2)
    return ax


def draw_lstm_cell(ax):
    """Chapter 3: one LSTM step. The cell state runs along the top, scaled by f_t and added to;
    h_{t-1} and x_t meet at the bottom left and feed all four gates; h_t leaves on the right.
    """
    # the cell
    draw_box(
        ax, (3.5, 1.4), "", "0.95", width=6.4, height=4.0, alpha=1.0, edgecolor="0.6"
    )
    wire = {"color": "0.3", "lw": 1.3}
    gates = [
        (1, "σ", "$f_t$"),
        (2.3, "σ", "$i_t$"),
        (3.6, "tanh", "$g_t$"),
        (4.9, "σ", "$o_t$"),
    ]
    # the inputs of every gate: h_{t-1} from the left and x_t from below join on one wire
    bus_y, join_x = -0.25, 0.6
    draw_arrow(ax, (-0.4, bus_y), (join_x, bus_y), **wire)
    draw_arrow(ax, (join_x, -1.15), (join_x, bus_y), **wire)
    draw_line(ax, [(join_x, bus_y), (gates[-1][0], bus_y)], **wire)
    ax.plot(join_x, bus_y, "o", color="0.3", markersize=4)
    ax.text(-0.4, bus_y + 0.2, "$h_{t-1}$", fontsize=12)
    ax.text(join_x, -1.35, "$x_t$", ha="center", fontsize=12)
    for x, text, name in gates:
        draw_box(ax, (x, 0.6), text, "C0" if text == "σ" else "C2")
        ax.text(x + 0.45, 0.15, name, fontsize=11)
        draw_arrow(ax, (x, bus_y), (x, 0.35), **wire)
    draw_operator(ax, (1, 2.8), "×")
    draw_operator(ax, (3.0, 2.8), "+")
    draw_operator(ax, (3.0, 1.8), "×")
    draw_operator(ax, (5.8, 1.0), "×")
    draw_box(ax, (5.8, 2.0), "tanh", "C1", width=0.7, height=0.4)
    for start, end in [
        ((-0.4, 2.8), (0.78, 2.8)),
        ((1.22, 2.8), (2.78, 2.8)),
        ((3.22, 2.8), (7.4, 2.8)),
        ((1, 0.85), (1, 2.58)),
        ((2.3, 0.85), (2.82, 1.7)),
        ((3.6, 0.85), (3.18, 1.7)),
        ((3.0, 2.02), (3.0, 2.58)),
        ((5.8, 2.8), (5.8, 2.2)),
        ((5.8, 1.8), (5.8, 1.22)),
        ((4.9, 0.85), (5.6, 1.0)),
        ((6.02, 1.0), (7.4, 1.0)),
    ]:
        draw_arrow(ax, start, end, **wire)
    ax.text(-0.4, 3.0, "$c_{t-1}$", fontsize=12)
    ax.text(7.0, 3.0, "$c_t$", fontsize=12)
    ax.text(7.0, 1.2, "$h_t$", fontsize=12)
    ax.text(1.2, -1.3, "every gate reads $h_{t-1}$ and $x_t$", fontsize=11)
    return frame_diagram(
        ax,
        (-0.6, 7.8),
        (-1.5, 3.5),
        "One LSTM step: the cell state (top line) is only scaled by $f_t$ and added to",
    )


def draw_bidirectional(ax, words=("Apple", "trees", "are", "tall")):
    """Chapter 4: a bidirectional RNN over `words`, the forward states (blue) under the backward
    states (orange), and every output y_t reading both.
    """
    words = list(words)
    if not words:
        raise ValueError(
            "words is empty: pass the words of the sentence to draw, e.g. ['Apple',"
            " 'trees']"
        )
    spacing = 2.2
    for t, word in enumerate(words):
        x = spacing * t
        ax.text(x, 0, f"$x_{{{t + 1}}}$\n{word}", ha="center", va="center", fontsize=11)
        for y, label, color in [
            (1.3, r"$\overrightarrow{h}_{" + f"{t + 1}" + "}$", "C0"),
            (2.6, r"$\overleftarrow{h}_{" + f"{t + 1}" + "}$", "C1"),
        ]:
            draw_box(ax, (x, y), label, color, width=0.9, height=0.6, fontsize=12)
        ax.text(x, 4.0, f"$y_{{{t + 1}}}$", ha="center", va="center", fontsize=12)
        draw_arrow(ax, (x, 0.35), (x, 1.0), color="C0", lw=1.0)
        # the input to the backward state and the forward state's output pass beside the other state's box
        draw_line(
            ax, [(x - 0.2, 0.35), (x - 0.62, 0.65), (x - 0.62, 2.0)], color="C1", lw=1.0
        )
        draw_arrow(ax, (x - 0.62, 2.0), (x - 0.3, 2.3), color="C1", lw=1.0)
        draw_arrow(ax, (x, 2.9), (x, 3.75), color="0.3", lw=1.0)
        draw_line(
            ax, [(x + 0.3, 1.6), (x + 0.62, 1.9), (x + 0.62, 3.3)], color="0.3", lw=1.0
        )
        draw_arrow(ax, (x + 0.62, 3.3), (x + 0.25, 3.75), color="0.3", lw=1.0)
        if t < len(words) - 1:
            draw_arrow(ax, (x + 0.45, 1.3), (x + 1.75, 1.3), color="C0", lw=2)
            draw_arrow(ax, (x + 1.75, 2.6), (x + 0.45, 2.6), color="C1", lw=2)
    label_x = spacing * (len(words) - 1) + 0.7
    ax.text(label_x, 1.3, "forward RNN", color="C0", va="center")
    ax.text(label_x, 2.6, "backward RNN", color="C1", va="center")
    ax.text(label_x, 4.0, "merge: concat, sum, ...", va="center")
    return frame_diagram(
        ax,
        (-0.8, label_x + 2.3),
        (-0.6, 4.4),
        "A bidirectional RNN: every output sees the past (blue) and the future"
        " (orange)",
    )


def draw_sequence_diagram(
    ax,
    num_steps,
    input_steps,
    output_steps,
    title,
    labels=False,
    feedback=False,
    decoder_start=None,
):
    """Chapter 1: inputs (green, bottom), recurrent states (blue, middle) and outputs (orange, top).

    feedback: each output is fed back as the next step's input (red boxes, curved arrows), the
    autoregressive one-to-many pattern. decoder_start: the first step of a decoder that starts from a zero state and
    reads the encoder's last state as its input at every step (purple boxes "c"), as RepeatVector does.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(
            f"num_steps must be a whole number of at least 1, got {num_steps!r}"
        )
    input_steps, output_steps = set(input_steps), set(output_steps)
    if not input_steps | output_steps <= set(range(num_steps)):
        raise ValueError(f"input and output steps must lie in 0..{num_steps - 1}")
    if decoder_start is not None and not 0 < decoder_start < num_steps:
        raise ValueError(
            f"decoder_start must be a step between 1 and {num_steps - 1}, got"
            f" {decoder_start!r}"
        )
    for t in range(num_steps):
        draw_box(
            ax,
            (t, 0),
            f"$h_{{{t + 1}}}$" if labels else "",
            "C0",
            width=0.6,
            height=0.6,
        )
        if t > 0 and t != decoder_start:
            draw_arrow(ax, (t - 0.7, 0), (t - 0.3, 0))
            if labels:
                ax.text(t - 0.5, 0.12, "$W_{hh}$", ha="center", fontsize=8)
        if t in input_steps:
            draw_box(
                ax,
                (t, -1.1),
                f"$x_{{{t + 1}}}$" if labels else "",
                "C2",
                width=0.5,
                height=0.5,
                text_color="black",
            )
            draw_arrow(ax, (t, -0.85), (t, -0.3))
        # the input of this step is the previous output
        elif feedback and t > 0 and t - 1 in output_steps:
            draw_box(
                ax,
                (t, -1.1),
                f"$y_{{{t}}}$" if labels else "",
                "C3",
                width=0.5,
                height=0.5,
                text_color="black",
            )
            draw_arrow(ax, (t, -0.85), (t, -0.3))
        if decoder_start is not None and t >= decoder_start:
            draw_box(ax, (t, -1.1), "c", "C4", width=0.5, height=0.5)
            draw_arrow(ax, (t, -0.85), (t, -0.3))
            draw_arrow(
                ax, (decoder_start - 1, -0.3), (t - 0.25, -1.1), color="C4", curve=0.25
            )
        if t in output_steps:
            draw_box(
                ax,
                (t, 1.1),
                f"$y_{{{t + 1}}}$" if labels else "",
                "C1",
                width=0.5,
                height=0.5,
                text_color="black",
            )
            draw_arrow(ax, (t, 0.3), (t, 0.85))
            # into the next step's input
            if feedback and t + 1 < num_steps and t + 1 not in input_steps:
                draw_arrow(
                    ax, (t + 0.25, 1.1), (t + 0.75, -1.1), color="C3", curve=-0.3
                )
    return frame_diagram(ax, (-0.8, num_steps - 0.2), (-1.9, 1.6), title)


def draw_rolled_and_unrolled(ax, steps=4):
    """Chapter 1: one recurrent cell drawn two ways. Left, rolled: the state h_t feeds itself back
    through W_hh with a one-step delay (the black square); x_t comes in through W_xh and y_t goes out
    through W_hy. Right, the same cell unrolled over `steps` steps from h_0: one copy per step, with
    the same three matrices written on every copy.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}")
    colors = {"x": "C2", "h": "C0", "y": "C1"}
    weight = {"fontsize": 10, "va": "center"}

    def cell(x, index):
        """The state box at column x with its input below and its output above, and their weights."""
        draw_box(
            ax,
            (x, 0),
            f"$h_{{{index}}}$",
            colors["h"],
            width=0.7,
            height=0.6,
            fontsize=12,
        )
        draw_box(
            ax,
            (x, -1.5),
            f"$x_{{{index}}}$",
            colors["x"],
            width=0.6,
            height=0.5,
            text_color="black",
        )
        draw_box(
            ax,
            (x, 1.5),
            f"$y_{{{index}}}$",
            colors["y"],
            width=0.6,
            height=0.5,
            text_color="black",
        )
        draw_arrow(ax, (x, -1.25), (x, -0.3))
        draw_arrow(ax, (x, 0.3), (x, 1.25))
        ax.text(x + 0.08, -0.78, "$W_{xh}$", color=colors["x"], ha="left", **weight)
        ax.text(x + 0.08, 0.78, "$W_{hy}$", color=colors["y"], ha="left", **weight)

    # rolled: the loop leaves the right edge of h_t and comes back into it one step later
    cell(0, "t")
    # a circle through the right edge of the box, clockwise from its top
    loop_x, radius = (0.62, 0.3)
    arc = [
        (
            loop_x + radius * math.cos(math.radians(angle)),
            radius * math.sin(math.radians(angle)),
        )
        for angle in range(150, -131, -10)
    ]
    draw_line(ax, arc, color=colors["h"], lw=1.4)
    draw_arrow(
        ax, arc[-1], (0.36, -0.14), color=colors["h"], lw=1.4, shrinkA=0, shrinkB=0
    )
    # the delay
    draw_box(ax, (loop_x + radius, 0), "", "black", width=0.14, height=0.14, alpha=1.0)
    ax.text(
        loop_x + radius + 0.15, 0, "$W_{hh}$", color=colors["h"], ha="left", **weight
    )
    ax.text(
        0.35,
        -2.25,
        "rolled: one cell, a loop\n■ = one-step delay ($h_{t-1}$ → step $t$)",
        ha="center",
        va="top",
        fontsize=10,
    )
    # unroll
    draw_arrow(ax, (2.0, 0), (2.9, 0), lw=2.0)
    ax.text(2.45, 0.2, "unroll", ha="center", fontsize=10)
    # unrolled: h_0, then one copy of the cell per step
    spacing, left = 1.75, 3.6
    draw_box(ax, (left, 0), "$h_0$", "0.55", width=0.6, height=0.6, fontsize=12)
    for t in range(1, steps + 1):
        x = left + spacing * t
        cell(x, t)
        draw_arrow(ax, (x - spacing + 0.35, 0), (x - 0.35, 0))
        ax.text(
            x - spacing / 2, 0.17, "$W_{hh}$", color=colors["h"], ha="center", **weight
        )
    right = left + spacing * steps
    ax.text(
        (left + right) / 2,
        -2.25,
        f"unrolled over T = {steps} steps: the same $W_{{xh}}$, $W_{{hh}}$ and "
        "$W_{hy}$ in every copy\n($h_0 = 0$ unless given)",
        ha="center",
        va="top",
        fontsize=10,
    )
    ax.set_aspect("equal")
    return frame_diagram(
        ax,
        (-1.0, right + 0.7),
        (-2.9, 2.0),
        "A recurrent network rolled (a loop) and unrolled (one copy per step)",
    )


def draw_gru_cell(ax):
    """Chapter 3: one GRU step in Keras's reset_after form. The state runs along the top, where
    h_t = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ h̃_t; h_{t-1} and x_t meet at the bottom left and feed the gates
    z_t and r_t; the reset gate scales the recurrent product h_{t-1} U_h̃ + b^h before x_t W_h̃ + b^x is
    added and tanh gives the candidate h̃_t (Keras keeps two biases per block in this form).
    """
    wire = {"color": "0.3", "lw": 1.3}
    dot = {"color": "0.3", "markersize": 4}
    top, z_wire_y, bus_y, x_branch_y = 3.5, 3.0, -0.25, -0.8
    down_x, join_x, z_x, r_x = 0.25, 0.7, 1.3, 2.4
    recurrent_x, input_x, keep_x, one_minus_x, mix_x = 3.45, 4.8, 5.9, 6.45, 7.0
    # the cell
    draw_box(
        ax,
        (3.65, 1.375),
        "",
        "0.95",
        width=7.6,
        height=4.95,
        alpha=1.0,
        edgecolor="0.6",
    )
    # the state line: h_{t-1} -> × z_t -> + -> h_t
    draw_arrow(ax, (-0.6, top), (keep_x - 0.22, top), **wire)
    draw_arrow(ax, (keep_x + 0.22, top), (mix_x - 0.22, top), **wire)
    draw_arrow(ax, (mix_x + 0.22, top), (8.1, top), **wire)
    draw_operator(ax, (keep_x, top), "×")
    draw_operator(ax, (mix_x, top), "+")
    ax.text(-0.7, top, "$h_{t-1}$", ha="right", va="center", fontsize=12)
    ax.text(8.2, top, "$h_t$", ha="left", va="center", fontsize=12)
    # the gates read h_{t-1} (down the left) and x_t (from below), joined on one wire
    draw_line(ax, [(down_x, top), (down_x, bus_y), (r_x, bus_y)], **wire)
    ax.plot([down_x, join_x, join_x], [top, bus_y, x_branch_y], "o", **dot)
    draw_arrow(ax, (join_x, -1.55), (join_x, bus_y), **wire)
    ax.text(join_x, -1.75, "$x_t$", ha="center", va="top", fontsize=12)
    for x, name in ((z_x, "$z_t$"), (r_x, "$r_t$")):
        draw_box(ax, (x, 0.6), "σ", "C0")
        ax.text(x + 0.45, 0.15, name, fontsize=11)
        draw_arrow(ax, (x, bus_y), (x, 0.35), **wire)
    # the candidate: tanh(x_t W + b^x + r_t ⊙ (h_{t-1} U + b^h)); the reset gate scales the recurrent product
    ax.plot(recurrent_x, top, "o", **dot)
    # a gap where z_t's wire passes
    draw_line(ax, [(recurrent_x, top), (recurrent_x, z_wire_y + 0.12)], **wire)
    draw_arrow(ax, (recurrent_x, z_wire_y - 0.12), (recurrent_x, 2.23), **wire)
    draw_box(
        ax,
        (recurrent_x, 2.0),
        r"$h_{t-1}U_{\tilde h}+b^h$",
        "C4",
        width=1.5,
        height=0.45,
        fontsize=11,
    )
    draw_arrow(ax, (recurrent_x, 1.77), (recurrent_x, 1.47), **wire)
    draw_operator(ax, (recurrent_x, 1.25), "×")
    draw_arrow(ax, (r_x, 0.85), (recurrent_x - 0.19, 1.14), **wire)
    draw_line(ax, [(join_x, x_branch_y), (input_x, x_branch_y)], **wire)
    draw_arrow(ax, (input_x, x_branch_y), (input_x, 0.22), **wire)
    draw_box(
        ax,
        (input_x, 0.45),
        r"$x_tW_{\tilde h}+b^x$",
        "C4",
        width=1.4,
        height=0.45,
        fontsize=11,
    )
    draw_arrow(ax, (input_x, 0.68), (input_x, 1.03), **wire)
    draw_operator(ax, (input_x, 1.25), "+")
    draw_arrow(ax, (recurrent_x + 0.22, 1.25), (input_x - 0.22, 1.25), **wire)
    draw_arrow(ax, (input_x, 1.47), (input_x, 1.8), **wire)
    draw_box(ax, (input_x, 2.0), "tanh", "C2", width=0.7, height=0.4)
    # (1 - z_t) ⊙ h̃_t joins the state from below
    draw_arrow(ax, (input_x + 0.35, 2.0), (mix_x - 0.22, 2.0), **wire)
    ax.text(5.55, 2.08, r"$\tilde h_t$", fontsize=12, ha="center", va="bottom")
    draw_operator(ax, (mix_x, 2.0), "×")
    draw_arrow(ax, (mix_x, 2.22), (mix_x, top - 0.22), **wire)
    # z_t: up, over the wire from h_{t-1} to the recurrent product, to × on the state line and through
    # "1 −" to × with h̃_t
    draw_line(
        ax,
        [(z_x, 0.85), (z_x, z_wire_y), (one_minus_x, z_wire_y), (one_minus_x, 2.73)],
        **wire,
    )
    ax.plot(keep_x, z_wire_y, "o", **dot)
    draw_arrow(ax, (keep_x, z_wire_y), (keep_x, top - 0.22), **wire)
    draw_box(ax, (one_minus_x, 2.55), "1 −", "C1", width=0.5, height=0.36)
    draw_arrow(ax, (one_minus_x + 0.1, 2.37), (mix_x - 0.16, 2.16), **wire)
    ax.text(
        1.5,
        -1.75,
        r"$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$   (Keras:"
        r" reset_after=True)",
        fontsize=11,
        va="top",
    )
    ax.set_aspect("equal")
    return frame_diagram(
        ax,
        (-1.6, 8.8),
        (-2.2, 4.0),
        "One GRU step: the state (top line) keeps a share $z_t$ of $h_{t-1}$, "
        r"$1 - z_t$ of the candidate $\tilde h_t$",
    )


def draw_encoder_decoder(ax, source, target, attend_step=None, weights=None):
    """Chapter 5: an encoder (blue) reads `source`, a decoder (orange) writes `target` from
    the start symbol "^", each output read back as the next step's input. The encoder's last
    state starts the decoder (purple arrow). Without `attend_step` that state is the
    decoder's only view of the input; with it, output step `attend_step` (0-based) also
    reads a context c, the average of all encoder states with `weights` (the lines' widths;
    equal if None).
    """
    source, target = list(source), list(target)
    if not source or not target:
        raise ValueError("source and target need at least one token each")
    if attend_step is not None and not 0 <= attend_step < len(target):
        raise ValueError(
            f"attend_step must be an output step in 0..{len(target) - 1}, got"
            f" {attend_step!r}"
        )
    weights = [1 / len(source)] * len(source) if weights is None else list(weights)
    if len(weights) != len(source) or min(weights) < 0 or max(weights) == 0:
        raise ValueError("weights needs one non-negative weight per source token")
    first_output = len(source) + 0.8
    for j, token in enumerate(source):
        draw_box(ax, (j, 0), f"$h_{{{j + 1}}}$", "C0", width=0.6, height=0.6)
        ax.text(j, -1.1, token, ha="center", va="center", fontsize=10)
        draw_arrow(ax, (j, -0.85), (j, -0.3))
        if j:
            draw_arrow(ax, (j - 0.7, 0), (j - 0.3, 0))
    for t, token in enumerate(target):
        x = first_output + t
        draw_box(ax, (x, 0), f"$s_{{{t + 1}}}$", "C1", width=0.6, height=0.6)
        read = "^" if t == 0 else target[t - 1]
        ax.text(x, -1.1, read, ha="center", va="center", fontsize=10, color="C3")
        draw_arrow(ax, (x, -0.85), (x, -0.3))
        ax.text(x, 1.1, token, ha="center", va="center", fontsize=10, fontweight="bold")
        draw_arrow(ax, (x, 0.3), (x, 0.85))
        if t:
            draw_arrow(ax, (x - 0.7, 0), (x - 0.3, 0))
    draw_arrow(ax, (len(source) - 0.7, 0), (first_output - 0.3, 0), color="C4", lw=2.5)
    title = "Without attention: the input reaches the decoder only through one state"
    if attend_step is not None:
        context = ((len(source) - 1) / 2, 2.2)
        draw_box(ax, context, "$c$", "C4", width=0.5, height=0.45)
        for j, weight in enumerate(weights):
            width = 0.5 + 4 * weight / max(weights)
            draw_line(ax, [(j, 0.3), (context[0], context[1] - 0.22)], "C4", width)
        output = (first_output + attend_step, 1.35)
        draw_arrow(ax, (context[0] + 0.25, context[1]), output, color="C4", lw=1.5)
        title = (
            "With attention: an output reads c, a weighted average of all the states"
        )
    return frame_diagram(
        ax, (-0.7, first_output + len(target) - 0.3), (-1.5, 2.7), title
    )
