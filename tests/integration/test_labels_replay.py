"""`driftline replay` of predictions, then labels out of order with duplicates, orphans and late
ones: the realized performance of each window, printed and stored, equals scikit-learn's."""

import subprocess
import sys

import orjson
import yaml

from driftline.store import SqlStore
from tests.labels_data import check_against_sklearn, label_config, stream


def replay(tmp_path, values: list[bytes], name: str = "r") -> tuple[subprocess.CompletedProcess, str]:
    data = tmp_path / f"{name}.jsonl"
    data.write_bytes(b"\n".join(values) + b"\n")
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(label_config()))
    url = f"sqlite:///{tmp_path / name}.db"
    proc = subprocess.run([sys.executable, "-m", "driftline.cli", "replay", "-c", str(path), str(data),
                           "--database", url], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc, url


def test_replayed_labels_give_each_windows_performance_as_scikit_learn(tmp_path):
    preds, labels, expected = stream()
    proc, url = replay(tmp_path, preds + labels)
    lines = [orjson.loads(x) for x in proc.stdout.splitlines() if x.startswith('{"type":"performance"')]
    last = {}
    for line in lines:  # revisions in order, each a new one
        w = line["window"]["seq"]
        assert line["revision"] == last.get(w, {"revision": 0})["revision"] + 1
        last[w] = line
    check_against_sklearn(last, expected)
    stored = SqlStore(url).results.performance("m")
    assert [(r["seq"], r["revision"], r["labelled"]) for r in stored] == [
        (w, last[w]["revision"], last[w]["labelled"]) for w in sorted(last)]
    assert all(r["metrics"] == last[r["seq"]]["metrics"] for r in stored)
