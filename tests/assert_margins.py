"""Run a chapter's source as a script and record how much room every `assert` had.

    python -m tests.assert_margins chapters/03_lstm_gru.py build/margins/03_seed7.jsonl

Each `assert` of the chapter is rewritten (with `ast`) into a call that evaluates the same
expression, appends one JSON line to the log and carries on, so one run reports every assert
of the chapter, failed ones included (the exit status is 1 when any failed). For a numeric
comparison `a < b` (also `<=`, `>`, `>=`, each link of a chain such as `0 < a < b`, and each
comparison joined by `and`) the line holds both sides and the relative margin
(b - a) / max(|a|, |b|): the share by which the bound could move before the assert fails.
Other asserts (`all(...)`, `np.allclose(...)`) are recorded as passed or failed, without a margin.

`make sweep` runs this for several seeds in a perturbed numeric environment; `tests/sweep.py`
turns the logs into the table of the tightest asserts.
"""

import ast
import json
import math
import os
import sys
import textwrap
import time
from pathlib import Path

OPERATORS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _compare(left, operator, right):
    return {
        "<": lambda: left < right,
        "<=": lambda: left <= right,
        ">": lambda: left > right,
        ">=": lambda: left >= right,
        "==": lambda: left == right,
        "!=": lambda: left != right,
        "is": lambda: left is right,
        "is not": lambda: left is not right,
        "in": lambda: left in right,
        "not in": lambda: left not in right,
    }[operator]()


def _scalar(value):
    """A float for a real number (Python, NumPy or a 0-d tensor), else None."""
    try:
        if hasattr(value, "numpy"):
            value = value.numpy()
        if hasattr(value, "shape") and getattr(value, "shape", None) not in ((), None):
            return None
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return None
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def relative_margin(left, operator, right):
    """(bound - value) / max(|value|, |bound|) for an ordering comparison of two reals, else None."""
    a, b = _scalar(left), _scalar(right)
    if a is None or b is None or operator not in ("<", "<=", ">", ">="):
        return None
    slack = b - a if operator in ("<", "<=") else a - b
    scale = max(abs(a), abs(b))
    return slack / scale if scale > 0 else 0.0


class AssertRecorder:
    """Collects one record per executed assert and writes it to a JSON-lines file."""

    def __init__(self, log_path, source_lines):
        self.log_path = Path(log_path)
        self.source_lines = source_lines
        self.failures = 0

    def __call__(self, line, end_line, clauses, message):
        """`clauses`: the operands of `and` (one for a plain assert), each (operand thunks, operators)."""
        passed, links = True, []
        for operands, operators in clauses:
            values = [operands[0]()]
            if not operators:
                passed = bool(values[0])
            for index, operator in enumerate(operators or []):
                values.append(operands[index + 1]())
                left, right = values[index], values[index + 1]
                ok = bool(_compare(left, operator, right))
                links.append(
                    {
                        "operator": operator,
                        "left": _scalar(left),
                        "right": _scalar(right),
                        "margin": relative_margin(left, operator, right),
                        "passed": ok,
                    }
                )
                passed = passed and ok
                if not ok:
                    break
            if not passed:
                break  # as `and` does: the rest is not evaluated
        margins = [link["margin"] for link in links if link["margin"] is not None]
        statement = textwrap.dedent(
            "\n".join(self.source_lines[line - 1 : end_line])
        ).strip()
        record = {
            "line": line,
            "source": self.source_lines[line - 1].strip(),
            "statement": statement,
            "passed": passed,
            "margin": min(margins) if margins else None,
            "links": links,
        }
        if not passed:
            self.failures += 1
            record["message"] = str(message()) if message else ""
            print(
                f"ASSERT FAILED at line {line}: {record['source']} {record['message']}",
                file=sys.stderr,
            )
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


class _RewriteAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        def thunk(expression):
            return ast.Lambda(
                args=ast.arguments(
                    posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]
                ),
                body=expression,
            )

        def clause(test):
            if isinstance(test, ast.Compare):
                operands = [test.left, *test.comparators]
                operators = ast.List(
                    [ast.Constant(OPERATORS[type(op)]) for op in test.ops], ast.Load()
                )
            else:
                operands, operators = [test], ast.Constant(None)
            return ast.Tuple(
                [ast.List([thunk(o) for o in operands], ast.Load()), operators],
                ast.Load(),
            )

        parts = (
            node.test.values
            if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And)
            else [node.test]
        )
        call = ast.Call(
            func=ast.Name("__record_assert__", ast.Load()),
            args=[
                ast.Constant(node.lineno),
                ast.Constant(node.end_lineno),
                ast.List([clause(part) for part in parts], ast.Load()),
                thunk(node.msg) if node.msg else ast.Constant(None),
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Expr(call), node)


def run_chapter(source_path, log_path):
    """Execute the chapter with recorded asserts; return the number of failed asserts."""
    source_path, log_path = Path(source_path).resolve(), Path(log_path).resolve()
    if source_path.suffix != ".py" or not source_path.exists():
        raise ValueError(f"{source_path} is not a chapter source (.py)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("", encoding="utf-8")
    source = source_path.read_text(encoding="utf-8")
    tree = ast.fix_missing_locations(
        _RewriteAsserts().visit(ast.parse(source, str(source_path)))
    )
    recorder = AssertRecorder(log_path, source.splitlines())
    # as nbval and Jupyter run a notebook: in its own folder
    os.chdir(source_path.parent)
    sys.path.insert(0, str(source_path.parent.parent))
    start = time.perf_counter()
    code = compile(tree, str(source_path), "exec")
    exec(
        code,
        {
            "__name__": "__main__",
            "__file__": str(source_path),
            "__record_assert__": recorder,
        },
    )
    with log_path.open("a", encoding="utf-8") as log:
        log.write(json.dumps({"seconds": round(time.perf_counter() - start, 1)}) + "\n")
    return recorder.failures


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.assert_margins CHAPTER.py LOG.jsonl")
    sys.exit(1 if run_chapter(sys.argv[1], sys.argv[2]) else 0)
