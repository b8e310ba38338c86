"""The box-and-arrow figures of the chapters, one function per figure.

Each function draws on the Axes it is given, sets the title and returns the Axes, e.g.
`draw_lstm_cell(plt.figure(figsize=(9, 4.6)).gca())`. They are built from the primitives in
utils.plots (draw_box, draw_node, draw_operator, draw_arrow, draw_line, frame_diagram).
"""

from utils.plots import draw_arrow, draw_box, draw_line, draw_node, draw_operator, frame_diagram


def draw_unrolled_bptt(ax, steps=4, loss_step=None):
    """Chapter 2: an RNN unrolled over `steps` steps, inputs at the bottom, states in the middle,
    per-step losses on top; black arrows are the forward pass, red ones the gradient of the loss at
    step `loss_step` (default: step 3, or the last step if there are fewer) flowing back in time.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}")
    loss_step = min(3, steps) if loss_step is None else loss_step
    if not isinstance(loss_step, int) or not 1 <= loss_step <= steps:
        raise ValueError(f"loss_step must be a step between 1 and steps = {steps}, got {loss_step!r}")
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
    ax.plot([], [], "-", color="C3", label=f"gradient of $\\ell_{{{loss_step}}}$ flowing back in time")
    ax.set(xlim=(-0.5, steps + 0.5), ylim=(-0.4, 3.0), xlabel="time step t", ylabel="layer of the unrolled graph",
           yticks=[0, 1, 2], yticklabels=["input", "state", "loss"], title=f"An RNN unrolled over {steps} steps")
    ax.grid(False)
    ax.legend(loc="upper center", ncol=2)
    return ax


def draw_lstm_cell(ax):
    """Chapter 3: one LSTM step. The cell state runs along the top, scaled by f_t and added to;
    h_{t-1} and x_t meet at the bottom left and feed all four gates; h_t leaves on the right.
    """
    draw_box(ax, (3.5, 1.4), "", "0.95", width=6.4, height=4.0, alpha=1.0, edgecolor="0.6")  # the cell
    wire = {"color": "0.3", "lw": 1.3}
    gates = [(1, "σ", "$f_t$"), (2.3, "σ", "$i_t$"), (3.6, "tanh", "$g_t$"), (4.9, "σ", "$o_t$")]
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
    for start, end in [((-0.4, 2.8), (0.78, 2.8)), ((1.22, 2.8), (2.78, 2.8)), ((3.22, 2.8), (7.4, 2.8)),
                       ((1, 0.85), (1, 2.58)), ((2.3, 0.85), (2.82, 1.7)), ((3.6, 0.85), (3.18, 1.7)),
                       ((3.0, 2.02), (3.0, 2.58)), ((5.8, 2.8), (5.8, 2.2)), ((5.8, 1.8), (5.8, 1.22)),
                       ((4.9, 0.85), (5.6, 1.0)), ((6.02, 1.0), (7.4, 1.0))]:
        draw_arrow(ax, start, end, **wire)
    ax.text(-0.4, 3.0, "$c_{t-1}$", fontsize=12)
    ax.text(7.0, 3.0, "$c_t$", fontsize=12)
    ax.text(7.0, 1.2, "$h_t$", fontsize=12)
    ax.text(1.2, -1.3, "every gate reads $h_{t-1}$ and $x_t$", fontsize=11)
    return frame_diagram(ax, (-0.6, 7.8), (-1.5, 3.5),
                         "One LSTM step: the cell state (top line) is only scaled by $f_t$ and added to")


def draw_bidirectional(ax, words=("Apple", "trees", "are", "tall")):
    """Chapter 4: a bidirectional RNN over `words`, the forward states (blue) under the backward
    states (orange), and every output y_t reading both.
    """
    words = list(words)
    if not words:
        raise ValueError("words is empty: pass the words of the sentence to draw, e.g. ['Apple', 'trees']")
    spacing = 2.2
    for t, word in enumerate(words):
        x = spacing * t
        ax.text(x, 0, f"$x_{{{t + 1}}}$\n{word}", ha="center", va="center", fontsize=11)
        for y, label, color in [(1.3, r"$\overrightarrow{h}_{" + f"{t + 1}" + "}$", "C0"),
                                (2.6, r"$\overleftarrow{h}_{" + f"{t + 1}" + "}$", "C1")]:
            draw_box(ax, (x, y), label, color, width=0.9, height=0.6, fontsize=12)
        ax.text(x, 4.0, f"$y_{{{t + 1}}}$", ha="center", va="center", fontsize=12)
        draw_arrow(ax, (x, 0.35), (x, 1.0), color="C0", lw=1.0)
        draw_arrow(ax, (x - 0.25, 0.35), (x - 0.25, 2.3), color="C1", lw=1.0)
        draw_arrow(ax, (x, 2.9), (x, 3.75), color="0.3", lw=1.0)
        draw_arrow(ax, (x + 0.3, 1.6), (x + 0.3, 3.75), color="0.3", lw=1.0)
        if t < len(words) - 1:
            draw_arrow(ax, (x + 0.45, 1.3), (x + 1.75, 1.3), color="C0", lw=2)
            draw_arrow(ax, (x + 1.75, 2.6), (x + 0.45, 2.6), color="C1", lw=2)
    label_x = spacing * (len(words) - 1) + 0.7
    ax.text(label_x, 1.3, "forward RNN", color="C0", va="center")
    ax.text(label_x, 2.6, "backward RNN", color="C1", va="center")
    ax.text(label_x, 4.0, "merge: concat, sum, ...", va="center")
    return frame_diagram(ax, (-0.8, label_x + 2.3), (-0.6, 4.4),
                         "A bidirectional RNN: every output sees the past (blue) and the future (orange)")


def draw_sequence_diagram(ax, num_steps, input_steps, output_steps, title, labels=False, feedback=False,
                          decoder_start=None):
    """Chapter 1: inputs (green, bottom), recurrent states (blue, middle) and outputs (orange, top).

    feedback: each output is fed back as the next step's input (curved arrows), the autoregressive
    one-to-many pattern. decoder_start: the first step of a decoder that starts from a zero state and
    reads the encoder's last state as its input at every step (purple boxes "c"), as RepeatVector does.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a whole number of at least 1, got {num_steps!r}")
    input_steps, output_steps = set(input_steps), set(output_steps)
    if not input_steps | output_steps <= set(range(num_steps)):
        raise ValueError(f"input and output steps must lie in 0..{num_steps - 1}")
    if decoder_start is not None and not 0 < decoder_start < num_steps:
        raise ValueError(f"decoder_start must be a step between 1 and {num_steps - 1}, got {decoder_start!r}")
    for t in range(num_steps):
        draw_box(ax, (t, 0), f"$h_{{{t + 1}}}$" if labels else "", "C0", width=0.6, height=0.6)
        if t > 0 and t != decoder_start:
            draw_arrow(ax, (t - 0.7, 0), (t - 0.3, 0))
            if labels:
                ax.text(t - 0.5, 0.12, "$W_{hh}$", ha="center", fontsize=8)
        if t in input_steps:
            draw_box(ax, (t, -1.1), f"$x_{{{t + 1}}}$" if labels else "", "C2", width=0.5, height=0.5,
                     text_color="black")
            draw_arrow(ax, (t, -0.85), (t, -0.3))
        if decoder_start is not None and t >= decoder_start:
            draw_box(ax, (t, -1.1), "c", "C4", width=0.5, height=0.5)
            draw_arrow(ax, (t, -0.85), (t, -0.3))
            draw_arrow(ax, (decoder_start - 1, -0.3), (t - 0.25, -1.1), color="C4", curve=0.25)
        if t in output_steps:
            draw_box(ax, (t, 1.1), f"$y_{{{t + 1}}}$" if labels else "", "C1", width=0.5, height=0.5,
                     text_color="black")
            draw_arrow(ax, (t, 0.3), (t, 0.85))
            if feedback and t + 1 < num_steps:
                draw_arrow(ax, (t + 0.25, 1.1), (t + 0.8, -0.3), color="C3", curve=-0.3)  # into the next cell
    return frame_diagram(ax, (-0.8, num_steps - 0.2), (-1.9, 1.6), title)
