"""Where an event's parts live: the default shape, or a ``fields:`` mapping of dotted paths.

Paths are found by name among the leaves of the sampled objects (up to four levels
deep): ``model``/``model_name``…, ``version``…, ``id``/``request_id``…, ``ts``/
``timestamp``…; the features are the object named ``features``/``inputs``… (else the
object with the most scalar fields); the prediction is a scalar named ``prediction``/
``score``…, or a scalar inside an object of that name (``output.score``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from driftline.config.settings import FieldMapping

MAX_DEPTH = 4
MODEL = ("model", "model_name", "modelname", "model_id", "modelid")
VERSION = ("version", "model_version", "modelversion", "version_id", "ver")
ID = ("id", "event_id", "eventid", "request_id", "requestid", "prediction_id", "predictionid", "uuid",
      "trace_id", "inference_id", "record_id")
TS = ("ts", "timestamp", "time", "event_time", "eventtime", "event_ts", "@timestamp", "datetime",
      "created_at", "createdat", "occurred_at", "date")
FEATURES = ("features", "inputs", "input", "feature", "feature_values", "x", "attributes", "data")
PREDICTION = ("prediction", "score", "output", "outputs", "prediction_score", "y_pred", "pred", "probability",
              "proba", "prob", "predicted", "result")
INSIDE_PREDICTION = ("score", "probability", "proba", "prob", "value", "prediction", "label", "class", "predicted")
INSIDE_MODEL = {"model": ("name", "id"), "version": ("version",)}


@dataclass(frozen=True)
class Shape:
    """The paths found (``None``: absent) and how many sampled objects have each."""

    model: str | None
    version: str | None
    id: str | None
    ts: str | None
    features: str | None
    prediction: str | None
    seen: dict[str, int]

    def mapping(self) -> dict[str, str | None]:
        """The ``fields:`` entries that differ from the default shape."""
        default = FieldMapping()
        out: dict[str, str | None] = {}
        for key in ("model", "version", "id", "ts", "features", "prediction"):
            path = getattr(self, key)
            if key in ("version", "prediction") and path is None:
                continue  # absent: the default path finds nothing either
            if path != getattr(default, key):
                out[key] = path
        return out


def leaves(doc: dict, prefix: str = "", depth: int = 1) -> dict[str, object]:
    """Every path of ``doc`` (objects too) to its value, up to :data:`MAX_DEPTH` levels."""
    out: dict[str, object] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or "." in key:
            continue  # a dotted path cannot name it
        path = f"{prefix}{key}"
        out[path] = value
        if isinstance(value, dict) and depth < MAX_DEPTH:
            out.update(leaves(value, path + ".", depth + 1))
    return out


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, dict):
        return "dict"
    return "null" if v is None else "list"


def path_kinds(docs: list[dict]) -> dict[str, Counter]:
    """Per path, how often each kind of value was seen there."""
    out: dict[str, Counter] = {}
    for doc in docs:
        for path, value in leaves(doc).items():
            out.setdefault(path, Counter())[_kind(value)] += 1
    return out


def _name(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()


def _pick(kinds: dict[str, Counter], names: tuple[str, ...], allowed: set[str], n: int,
          exclude: set[str] = frozenset(), inside: str | None = None) -> str | None:
    """The path whose last name comes first in ``names``, holding ``allowed`` kinds in most objects
    (shallower paths first); ``inside`` limits it to children of that path."""
    best = None
    for path, seen in kinds.items():
        if path in exclude or any(path.startswith(e + ".") for e in exclude if e):
            continue
        if inside is not None and path.rsplit(".", 1)[0] != inside:
            continue
        name = _name(path)
        if name not in names or sum(seen[k] for k in allowed) < 0.5 * n:
            continue
        rank = (names.index(name), path.count("."))
        if best is None or rank < best[0]:
            best = (rank, path)
    return best[1] if best else None


def _features_path(kinds: dict[str, Counter], n: int, taken: set[str]) -> str | None:
    objects = [p for p, seen in kinds.items() if seen["dict"] >= 0.5 * n and p not in taken]
    named = [p for p in objects if _name(p) in FEATURES]
    if named:
        return min(named, key=lambda p: (FEATURES.index(_name(p)), p.count(".")))

    def scalars(p: str) -> int:
        return sum(1 for q in kinds if q.rsplit(".", 1)[0] == p and q not in taken
                   and kinds[q]["dict"] + kinds[q]["list"] < 0.5 * n)
    ranked = sorted(objects, key=scalars, reverse=True)
    return ranked[0] if ranked and scalars(ranked[0]) >= 2 else None


def _prediction_path(kinds: dict[str, Counter], n: int, taken: set[str]) -> str | None:
    scalar = {"number", "str", "bool"}
    path = _pick(kinds, PREDICTION, scalar, n, exclude=taken)
    if path is not None:
        return path
    holder = _pick(kinds, PREDICTION, {"dict"}, n, exclude=taken)
    if holder is None:
        return None
    named = _pick(kinds, INSIDE_PREDICTION, scalar, n, inside=holder)
    if named is not None:
        return named
    # an output object with one scalar in it (``{"output": {"p_click": 0.3}}``): that scalar, whatever its name
    only = [q for q, seen in kinds.items() if q.rsplit(".", 1)[0] == holder and sum(seen[k] for k in scalar) >= 0.5 * n]
    return only[0] if len(only) == 1 else None


def find(docs: list[dict]) -> Shape:
    """The shape most of ``docs`` share."""
    n = len(docs)
    kinds = path_kinds(docs)
    named = _pick(kinds, FEATURES, {"dict"}, n)
    inside = {named} if named else set()
    model = _pick(kinds, MODEL, {"str"}, n, exclude=inside)
    holder = None
    if model is None:
        holder = _pick(kinds, ("model",), {"dict"}, n, exclude=inside)
        model = holder and _pick(kinds, INSIDE_MODEL["model"], {"str"}, n, inside=holder)
    version = _pick(kinds, VERSION, {"str", "number"}, n, exclude=inside | {model or ""})
    ident = _pick(kinds, ID, {"str", "number"}, n, exclude=inside | {model or "", version or "", holder or ""})
    ts = _pick(kinds, TS, {"str", "number"}, n, exclude=inside)
    taken = {p for p in (model, version, ident, ts) if p}
    features = named or _features_path(kinds, n, taken)
    prediction = _prediction_path(kinds, n, taken | ({features} if features else set()))
    found = {"model": model, "version": version, "id": ident, "ts": ts, "features": features,
             "prediction": prediction}
    seen = {k: sum(kinds[p].values()) - kinds[p]["null"] for k, p in found.items() if p}
    return Shape(**found, seen=seen)


def get(doc: dict, path: str) -> object:
    """The value at a dotted path, ``None`` where there is none."""
    for key in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc
