"""Find and exercise the chapters' GPU paths on a machine without a GPU (tests/test_gpu_branches.py).

No GPU with TensorFlow is available to the book's tests, so its GPU paths are checked in two ways:

- **statically** (`timing_asserts`, `gpu_only_code`): every assert that reads a clock (a value that
  flows from `utils.measure`'s timers) must sit under `if gpu_available():` or `if not
  gpu_available():`, because a law measured on CPUs need not hold on a GPU; and the code that only a
  GPU runs is found, so that its names can be resolved;
- **by a dry run** (`dry_run`, run as `python -m tests.gpu_branches CHAPTER.py`): the cells that hold
  GPU-only code needing no cuDNN are executed on the CPU with `gpu_available` patched to return True,
  after the earlier cells they need (found by the names they read), and with Keras compiling models
  with XLA where it would on a GPU (`jit_compile="auto"`). Each timer of utils.measure runs every step once,
  and each assert's expression is evaluated but not judged: a CPU says nothing about a GPU claim,
  but a wrong name, key or shape on the GPU path fails here. The run reports which GPU-only branches
  it entered.
"""

import ast
import builtins
import json
import os
import sys
import time
from pathlib import Path

import jupytext

# utils.measure's clocks
TIMERS = {"interleaved_seconds", "interleaved_median_seconds", "median_seconds"}
MUTATORS = {"append", "extend", "update", "insert", "add", "setdefault"}


def code_cells(source_path):
    """[(index, tags, source)] of the chapter's code cells, bootstrap cell excluded."""
    notebook = jupytext.read(source_path)
    cells = []
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "bootstrap" not in tags:
            cells.append((index, tags, cell.source))
    return cells


def is_gpu_test(node):
    """'gpu' for `gpu_available()`, 'cpu' for `not gpu_available()`, None for anything else."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "gpu_available"
    ):
        return "gpu"
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.Not)
        and is_gpu_test(node.operand) == "gpu"
    ):
        return "cpu"
    return None


def needs_cudnn(tree):
    """True for code that only a GPU with cuDNN can run: `use_cudnn=True`, or expecting cuDNN's mask error."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "use_cudnn"
            and isinstance(node.value, ast.Constant)
            and node.value.value is True
        ):
            return True
        if (
            isinstance(node, (ast.Name, ast.Attribute))
            and (node.id if isinstance(node, ast.Name) else node.attr)
            == "InvalidArgumentError"
        ):
            return True
    return False


def _names_loaded(node):
    return {
        n.id
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def _called(node):
    """Names of the functions a piece of code calls: `f(...)` and `module.f(...)` alike."""
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name):
                names.add(n.func.id)
            elif isinstance(n.func, ast.Attribute):
                names.add(n.func.attr)
    return names


def _root_name(node):
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(target):
    """The names an assignment to `target` changes: `a`, `a, b`, and the container in `d[k]` or `obj.x`."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return (
            set().union(*(_target_names(element) for element in target.elts))
            if target.elts
            else set()
        )
    root = _root_name(target)
    return {root} if root else set()


class _Taint(ast.NodeVisitor):
    """Follow values that come from a clock through assignments, in the chapter's order.

    A value is from a clock when it comes from one of `TIMERS` (or an alias of one), from a function
    that calls one or reads such a value, or from a name assigned such a value (also through `d[k] = ...`,
    `obj.x = ...` and `values.append(...)`, which taint the container).
    """

    def __init__(self):
        self.tainted, self.timing_functions = set(), set(TIMERS)
        # names bound by `import`: `np.append(times, x)` returns a new array, it taints no module
        self.modules = set()
        # enclosing device guards; (cell, line, guarded, source) of timing asserts
        self.guards, self.found = ([], [])
        self.cell = None

    def reads_clock(self, node):
        return bool(
            _names_loaded(node) & self.tainted or _called(node) & self.timing_functions
        )

    def visit_Import(self, node):
        for alias in node.names:
            self.modules.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if alias.name in TIMERS and alias.asname:
                self.timing_functions.add(alias.asname)

    def visit_FunctionDef(self, node):
        if self.reads_clock(node):
            self.timing_functions.add(node.name)
        self.generic_visit(node)  # asserts inside a function are checked too

    def visit_Assign(self, node):
        if self.reads_clock(node.value):
            for target in node.targets:
                self.tainted |= _target_names(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        if node.value is not None and self.reads_clock(node.value):
            self.tainted |= _target_names(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self.visit_AugAssign(node)

    def visit_Call(self, node):
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and not (isinstance(receiver, ast.Name) and receiver.id in self.modules)
            and any(
                self.reads_clock(argument)
                for argument in [*node.args, *(k.value for k in node.keywords)]
            )
        ):
            self.tainted |= _target_names(node.func.value)
        self.generic_visit(node)

    def visit_For(self, node):
        if self.reads_clock(node.iter):
            self.tainted |= _target_names(node.target)
        self.generic_visit(node)

    def visit_If(self, node):
        guard = is_gpu_test(node.test)
        self.guards.append(guard)
        for statement in node.body + node.orelse:
            self.visit(statement)
        self.guards.pop()

    def visit_Assert(self, node):
        if self.reads_clock(node.test):
            self.found.append(
                (self.cell, node.lineno, any(self.guards), ast.unparse(node))
            )


def timing_asserts(source_path):
    """[(cell index, line in cell, guarded by a device test, assert source)] for every assert that reads a clock."""
    taint = _Taint()
    for index, _, source in code_cells(source_path):
        taint.cell = index
        for statement in ast.parse(source).body:
            taint.visit(statement)
    return taint.found


def gpu_only_code(tree):
    """The statements and expressions that run only on a GPU: bodies of `if gpu_available()`, else
    branches of `if not gpu_available()`, the GPU side of `... if gpu_available() else ...`.
    """
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)):
            kind = is_gpu_test(node.test)
            body = node.body if isinstance(node.body, list) else [node.body]
            orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
            if kind == "gpu":
                parts.append((node, body))
            elif kind == "cpu" and orelse:
                parts.append((node, orelse))
    return parts


def bound_names(tree):
    """Every name a piece of code binds anywhere: assignments, imports, defs, arguments, loop targets..."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {
                (alias.asname or alias.name).split(".")[0] for alias in node.names
            }
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def unresolved_gpu_names(source_path):
    """Names read by GPU-only code that nothing in the chapter binds before it (or in it): typos and
    leftovers that a CPU run never reaches. Returns [(cell index, name)]."""
    problems, bound = [], set(dir(builtins))
    for index, _, source in code_cells(source_path):
        tree = ast.parse(source)
        bound |= bound_names(tree)
        for _, statements in gpu_only_code(tree):
            for statement in statements:
                problems += [
                    (index, name) for name in sorted(_names_loaded(statement) - bound)
                ]
    return problems


def module_attribute_chains(source_path):
    """[(cell index, 'tf.errors.InvalidArgumentError', module path)] for every dotted name in GPU-only
    code that starts at an imported module, so a test can check that each exists."""
    imports, chains = {}, []
    for index, _, source in code_cells(source_path):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports.update(
                    {alias.asname or alias.name: alias.name for alias in node.names}
                )
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.update(
                    {
                        alias.asname or alias.name: f"{node.module}.{alias.name}"
                        for alias in node.names
                    }
                )
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Attribute)
                and _root_name(node.value) in imports
            ):
                # an alias such as `layers = keras.layers`
                dotted = ast.unparse(node.value)
                imports[node.targets[0].id] = (
                    imports[dotted.split(".")[0]] + dotted[dotted.index(".") :]
                )
        for _, statements in gpu_only_code(tree):
            for statement in statements:
                for node in ast.walk(statement):
                    if isinstance(node, ast.Attribute):
                        dotted = ast.unparse(node)
                        root = dotted.split(".")[0]
                        if (
                            root in imports
                            and dotted.replace(".", "").replace("_", "").isalnum()
                        ):
                            chains.append((index, dotted, imports[root]))
    return chains


def dry_run_plan(source_path):
    """The code cells to execute for the dry run: each cell with GPU-only code that needs no cuDNN, and
    the earlier cells that bind the names they read (the latest binding of each, recursively).
    """
    cells = code_cells(source_path)
    trees = {index: ast.parse(source) for index, _, source in cells}
    order = [index for index, _, _ in cells]
    targets = [
        index
        for index in order
        if gpu_only_code(trees[index]) and not needs_cudnn(trees[index])
    ]
    needed, pending = set(), list(targets)
    while pending:
        index = pending.pop()
        if index in needed:
            continue
        needed.add(index)
        free = (
            _names_loaded(trees[index]) - bound_names(trees[index]) - set(dir(builtins))
        )
        earlier = [i for i in order if i < index]
        for name in free:
            binders = [i for i in earlier if name in bound_names(trees[i])]
            if binders:
                pending.append(binders[-1])
    return sorted(needed), targets


class _MarkBranches(ast.NodeTransformer):
    """Call __gpu_branch__(cell, line) first thing in every GPU-only branch; evaluate asserts, don't judge them."""

    def __init__(self, cell):
        self.cell = cell

    def visit_If(self, node):
        self.generic_visit(node)
        kind = is_gpu_test(node.test)
        branch = node.body if kind == "gpu" else node.orelse if kind == "cpu" else None
        if branch:
            mark = ast.Expr(
                ast.Call(
                    ast.Name("__gpu_branch__", ast.Load()),
                    [ast.Constant(self.cell), ast.Constant(node.lineno)],
                    [],
                )
            )
            branch.insert(0, ast.copy_location(mark, node))
        return node

    def visit_Assert(self, node):
        parts = [node.test] + ([node.msg] if node.msg else [])
        call = ast.Call(
            ast.Name("__evaluate__", ast.Load()),
            [ast.Constant(node.lineno), *parts],
            [],
        )
        return ast.copy_location(ast.Expr(call), node)


def _run_every_step_once(steps, rounds=None):
    """Stands in for utils.measure.interleaved_seconds: one call of each step, one 'round'."""
    seconds = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        seconds[name] = [time.perf_counter() - start]
    return seconds


def _run_once(step, repeats=None):
    """Stands in for utils.measure.median_seconds: one call."""
    return _run_every_step_once({"step": step})["step"][0]


def dry_run(source_path):
    """Execute the plan's cells with gpu_available() True; return a report (a dict)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import utils.book
    import utils.measure

    source_path = Path(source_path).resolve()
    os.chdir(source_path.parent)
    plan, targets = dry_run_plan(source_path)
    sources = {index: source for index, _, source in code_cells(source_path)}
    entered, evaluated = [], []
    namespace = {
        "__name__": "__main__",
        "__gpu_branch__": lambda cell, line: entered.append((cell, line)),
        "__evaluate__": lambda line, *values: evaluated.append(line),
    }
    import tests.xla_as_on_gpu.sitecustomize  # noqa: F401  (Keras picks XLA as it does when a GPU is present)

    # for the chapter's `from utils.book import gpu_available`
    utils.book.gpu_available = lambda: True
    utils.measure.interleaved_seconds = _run_every_step_once
    utils.measure.median_seconds = _run_once
    plt.show = lambda *args, **kwargs: plt.close("all")
    seconds = {}
    for index in plan:
        tree = ast.fix_missing_locations(
            _MarkBranches(index).visit(ast.parse(sources[index]))
        )
        start = time.perf_counter()
        exec(compile(tree, f"{source_path.name}, cell {index}", "exec"), namespace)
        seconds[index] = round(time.perf_counter() - start, 1)
    expected = sorted(
        [index, node.lineno]
        for index in targets
        for node, _ in gpu_only_code(ast.parse(sources[index]))
        if isinstance(node, ast.If)
    )
    return {
        "plan": plan,
        "targets": targets,
        "seconds": seconds,
        "branches": expected,
        "entered": [list(mark) for mark in sorted(set(entered))],
        "asserts_evaluated": len(evaluated),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.gpu_branches CHAPTER.py")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(json.dumps(dry_run(sys.argv[1])))
