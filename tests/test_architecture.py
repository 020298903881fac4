"""The layout holds: imports point down, one owner per fact, functions stay short.

Read from the source with ``ast`` (nothing is imported but in the subprocess test), so a
change that breaks a rule fails here with the file and line, not in review."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lossearch"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _top_level_imports(name: str) -> set[str]:
    """lossearch modules ``name`` imports when it loads (not inside functions)."""
    found = set()
    for node in TREES[name].body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lossearch"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lossearch"))
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycle():
    """A package importing its own submodules (re-exports) is not a cycle."""
    graph = {name: _top_level_imports(name) for name in MODULES}
    graph = {n: {d for d in deps if not d.startswith(n + ".")} for n, deps in graph.items()}
    done, path = set(), []

    def visit(node):
        if node in path:
            cycle = path[path.index(node) :] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        path.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        path.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("lossearch.study", "lossearch.tracking"),
        ("lossearch.settings", "lossearch.tracking"),
        ("lossearch.report", "lossearch.backends"),
        ("lossearch.study", "lossearch.backends"),
        ("lossearch.study", "lossearch.session"),
        ("lossearch.tracking", "lossearch.session"),
        ("lossearch.tracking", "lossearch.backends"),
        ("lossearch.integrations", "lossearch.session"),
        ("lossearch.selection", "lossearch.study"),
    ],
)
def test_a_lower_layer_does_not_import_a_higher_one(module, forbidden):
    imported = {
        m
        for n in MODULES
        if n == module or n.startswith(module + ".")
        for m in _top_level_imports(n)
    }
    assert not {m for m in imported if m == forbidden or m.startswith(forbidden + ".")}


def test_only_tracking_talks_to_mlflow():
    """The MLflow client and runs are written in one place (the lossearch.tracking package)."""
    offenders = []
    for name, tree in TREES.items():
        if name == "lossearch.tracking" or name.startswith("lossearch.tracking."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("client", "MlflowClient"):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
            fluent = isinstance(node, ast.Attribute) and node.attr in ("start_run", "log_model")
            if fluent and isinstance(node.value, ast.Name) and node.value.id == "mlflow":
                offenders.append(f"{name}:{node.lineno} mlflow.{node.attr}")
    assert offenders == []


def test_only_the_state_module_writes_what_a_search_stores():
    """An Optuna study's (and its trials') attributes and a Keras Tuner search's file are
    written by lossearch.study.state alone (its StudyState); the drivers call it."""
    offenders = []
    for name, tree in TREES.items():
        if name == "lossearch.study.state":
            continue
        for node in ast.walk(tree):
            written = isinstance(node, ast.Attribute) and node.attr in (
                "set_user_attr",
                "set_system_attr",
                "KERAS_TUNER_FILE",
            )
            named = isinstance(node, ast.Constant) and node.value == "lossearch.json"
            if written or named:
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == [], "write through lossearch.study.state.StudyState"


def test_one_baseline_function_and_no_locals_routing():
    defined = [
        f"{name}.{node.name}"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "baseline_record"
    ]
    assert defined == ["lossearch.selection.roles.baseline_record"]
    calls = [
        name
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "locals"
    ]
    assert calls == []


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 80
    ]
    optimize = next(n for n in TREES["lossearch.api"].body if getattr(n, "name", "") == "optimize")
    assert long == [] and optimize.end_lineno - optimize.lineno + 1 <= 60


def _loaded_after(code: str, modules: tuple[str, ...], command: bool = False) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``code``
    (``command``: imported as the ``lossearch`` command imports the package)."""
    start = "import sys\n" + ("sys.argv[0] = 'lossearch'\n" if command else "")
    script = f"{start}{code}\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_reading_a_stored_study_loads_no_mlflow():
    code = "import lossearch.study.stored, lossearch.report, lossearch.settings"
    assert _loaded_after(code, ("mlflow",)) == []


def test_configs_spaces_and_stored_studies_load_no_keras():
    """A config, a search space and a stored study are data: reading, checking, exporting
    and reporting them (`lossearch export`, `report`) needs neither Keras nor TensorFlow,
    nor scikit-learn; building the loss does (lossearch/losses/families.py)."""
    code = (
        "import lossearch.config, lossearch.search_space, lossearch.report\n"
        "import lossearch.study.stored\n"
        "config = lossearch.config.LossConfig('ldam', class_counts=[90, 10], drw_start=0.5,"
        " weights='inverse')\n"
        "lossearch.config.LossConfig.from_json(config.to_json())\n"
        "lossearch.search_space.SearchSpace.load('default')"
    )
    assert _loaded_after(code, ("keras", "tensorflow", "sklearn"), command=True) == []


def test_docs_architecture_names_every_module():
    """docs/architecture.md's table is the map of the package: a module added without a
    line there fails here."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "lossearch"
    unnamed = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if str(path.relative_to(package)) not in text and f"`{path.name}`" not in text
    ]
    assert unnamed == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("lossearch.optuna", "lossearch.integrations.optuna"),
        ("lossearch.keras_tuner", "lossearch.integrations.keras_tuner"),
        ("lossearch.mlflow_sync", "lossearch.tracking.sync"),
        ("lossearch.mlflow_model", "lossearch.tracking.model"),
        ("lossearch.storages", "lossearch.study.storages"),
        ("lossearch.records", "lossearch.study.state"),
        ("lossearch.stored", "lossearch.study.stored"),
    ],
)
def test_a_moved_module_keeps_its_old_name(old, new):
    """Users' imports from before the packages keep working: the same module object."""
    code = (
        f"import importlib, sys\nold = importlib.import_module({old!r})\n"
        f"print(old is sys.modules[{new!r}] and old.__name__ == {new!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().endswith("True"), done.stderr[-2000:]
    assert not (PACKAGE / (old.split(".")[1] + ".py")).exists()  # no twin file left behind
