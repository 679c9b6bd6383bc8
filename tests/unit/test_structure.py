"""The shape the design asks for, drawn from the imports (every import, lazy ones too):
no circles, each third-party client in one place, edges that import no other edge, and
``pickle`` nowhere but the one-off converter of older checkpoints."""

import ast
from pathlib import Path

import driftline

ROOT = Path(driftline.__file__).parent


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = ("driftline",) + path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


MODULES = modules()
MODULE_NAMES = set(MODULES)


def imported(path: Path) -> set[str]:
    """Every module an import statement anywhere in ``path`` names (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            modules_named = subs & MODULE_NAMES
            names.update(modules_named)  # `from pkg import module` imports the module
            if modules_named != subs:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


GRAPH = {name: {m for m in imported(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_imports_draw_no_circle():
    assert cycles() == []


CLIENTS = {  # third-party client → the only modules that may import it
    "confluent_kafka": {"driftline.streams.kafka"},
    "slack_sdk": {"driftline.alerts.slack"},
    "prometheus_client": {"driftline.metrics"},
    "msgpack": {"driftline.state"},
    "pickle": {"driftline.legacy"},
    "alembic": {"driftline.store.migrate"},
}


def test_each_client_is_imported_in_one_place_and_pickle_only_by_the_converter():
    for client, allowed in CLIENTS.items():
        users = {name for name, path in MODULES.items()
                 if any(m == client or m.startswith(client + ".") for m in imported(path))}
        assert users <= allowed, (client, users - allowed)
    sql = {name for name, path in MODULES.items() if any(m.startswith("sqlalchemy") for m in imported(path))}
    assert sql and all(name.startswith("driftline.store") for name in sql), sql


EDGES = {  # the parts that talk to the outside; each may import only value modules and its own package
    "kafka": ("driftline.streams.kafka", "driftline.streams.broker"),
    "store": ("driftline.store",),
    "slack": ("driftline.alerts.slack",),
    "webhook": ("driftline.alerts.webhook",),
    "pagerduty": ("driftline.alerts.pagerduty",),
    "alertmanager": ("driftline.alerts.alertmanager",),
    "metrics": ("driftline.metrics",),
}


def edge_of(module: str) -> str | None:
    return next((edge for edge, prefixes in EDGES.items() if module.startswith(prefixes)), None)


def test_no_edge_imports_another_edge():
    crossings = [(m, d) for m, deps in GRAPH.items() for d in deps
                 if edge_of(m) and edge_of(d) and edge_of(d) != edge_of(m)]
    assert crossings == []


def test_the_store_and_the_detectors_import_no_alerting_code():
    for name, deps in GRAPH.items():
        if name.startswith(("driftline.store", "driftline.detectors")):
            assert not any(d.startswith(("driftline.alerts", "driftline.pipeline", "driftline.app")) for d in deps), name
