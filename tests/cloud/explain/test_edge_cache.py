"""The eval's edge cache: reused only while everything the edge runs depended on is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from vau.cloud.explain import edge_cache


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A source tree, a manifest and a models folder, as the key reads them."""
    root = tmp_path / "root"
    (root / "edge").mkdir(parents=True)
    (root / "edge" / "pipeline.py").write_text("x = 1\n")
    (root / "cloud" / "explain").mkdir(parents=True)
    (root / "cloud" / "explain" / "evidence.py").write_text("y = 1\n")
    (root / "cloud" / "explain" / "explainer.py").write_text("z = 1\n")
    (tmp_path / "manifest.jsonl").write_text('{"path": "a.avi"}\n')
    (tmp_path / "models" / "cam").mkdir(parents=True)
    (tmp_path / "models" / "cam" / "model.safetensors").write_bytes(b"\0" * 8)
    return tmp_path


def _key(t: Path) -> dict[str, str]:
    return edge_cache.key(t / "manifest.jsonl", t / "models", None, root=t / "root")


def test_cached_runs_once_then_reads_the_file(tree: Path) -> None:
    calls: list[int] = []

    def run() -> list[dict[str, int]]:
        calls.append(1)
        return [{"clip": 1}, {"clip": 2}]

    path = tree / "cache.pkl"
    first = edge_cache.cached(path, lambda: _key(tree), run)
    again = edge_cache.cached(path, lambda: _key(tree), run)
    assert first == again == [{"clip": 1}, {"clip": 2}]
    assert len(calls) == 1


def test_the_key_is_taken_after_the_run_which_learns_missing_models(tree: Path) -> None:
    """The first run of a set learns its camera models: keyed before, every later run would
    find the models changed and run the edge again."""
    (tree / "models" / "cam" / "model.safetensors").unlink()

    def run() -> list[str]:
        (tree / "models" / "cam" / "model.safetensors").write_bytes(b"learnt")
        return ["events"]

    path = tree / "cache.pkl"
    assert edge_cache.cached(path, lambda: _key(tree), run) == ["events"]
    assert edge_cache.load(path, _key(tree)) == ["events"]


@pytest.mark.parametrize(
    ("changed", "part"),
    [
        ("manifest.jsonl", "manifest"),
        ("models/cam/model.safetensors", "models"),
        ("root/edge/pipeline.py", "sources"),
        ("root/cloud/explain/evidence.py", "sources"),
    ],
)
def test_a_changed_input_makes_the_cache_stale(
    tree: Path, changed: str, part: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tree / "cache.pkl"
    edge_cache.save(path, _key(tree), ["old"])
    (tree / changed).write_bytes((tree / changed).read_bytes() + b"\n")
    with caplog.at_level("INFO"):
        assert edge_cache.load(path, _key(tree)) is None
    assert f"is stale (['{part}'] changed)" in caplog.text  # that part and no other


def test_the_writers_code_is_not_in_the_key(tree: Path) -> None:
    before = _key(tree)
    (tree / "root" / "cloud" / "explain" / "explainer.py").write_text("z = 2\n")
    assert _key(tree) == before


def test_an_interrupted_save_leaves_the_old_cache(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tree / "cache.pkl"
    edge_cache.save(path, _key(tree), ["old"])

    def fail(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(edge_cache.pickle, "dump", fail)
    with pytest.raises(KeyboardInterrupt):
        edge_cache.save(path, _key(tree), ["new"])
    assert edge_cache.load(path, _key(tree)) == ["old"]
    assert [p.name for p in tree.iterdir() if p.name.startswith(".cache")] == []
