"""--config FILE (TOML, or a run's .meta.json sidecar) and the sidecar every dedup output gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neardup.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WIRE = str(EXAMPLES / "wire.jsonl")


def _dedup(tmp_path: Path, name: str, *extra: str) -> tuple[bytes, bytes]:
    kept, clusters = tmp_path / f"{name}.kept.jsonl", tmp_path / f"{name}.clusters.jsonl"
    assert main(["dedup", WIRE, "--out", str(kept), "--clusters", str(clusters), "-q", *extra]) == 0
    return kept.read_bytes(), clusters.read_bytes()


def test_a_config_file_and_the_same_options_on_the_command_line_give_the_same_outputs(tmp_path):
    config = tmp_path / "neardup.toml"
    config.write_text('keep = "longest"\nquiet = true\n\n[dedup]\nthreshold = 0.85\nmin-coverage = 0.7\n'
                      'date_field = "published"\n', encoding="utf-8")
    from_file = _dedup(tmp_path, "file", "--config", str(config))
    by_hand = _dedup(tmp_path, "hand", "--keep", "longest", "--threshold", "0.85", "--min-coverage", "0.7",
                     "--date-field", "published")
    assert from_file == by_hand
    assert from_file != _dedup(tmp_path, "plain")  # the options did something


def test_the_command_line_wins_over_the_file(tmp_path):
    config = tmp_path / "neardup.toml"
    config.write_text('[dedup]\nkeep = "longest"\n', encoding="utf-8")
    assert _dedup(tmp_path, "both", "--config", str(config), "--keep", "first") == _dedup(tmp_path, "first")


def test_options_of_other_commands_at_the_top_are_left_to_them(tmp_path, capsys):
    config = tmp_path / "neardup.toml"
    config.write_text('keep = "longest"\nthreshold = 0.9\n', encoding="utf-8")  # keep: dedup only
    story = tmp_path / "story.txt"
    story.write_text((EXAMPLES / "query-story.txt").read_text(encoding="utf-8"), encoding="utf-8")
    capsys.readouterr()
    assert main(["query", "--corpus", WIRE, str(story), "--json", "--config", str(config)]) == 0
    with_file = capsys.readouterr().out
    assert main(["query", "--corpus", WIRE, str(story), "--json", "--threshold", "0.9"]) == 0
    assert with_file == capsys.readouterr().out


@pytest.mark.parametrize(("text", "message"), [
    ('kep = "first"\n', "has no option 'kep'"),
    ('[dedup]\nkeep = "best"\n', "keep: 'best' is not one of"),
    ('[dedup]\nthreshold = "high"\n', "threshold:"),
    ('[dedup]\nno-partial = "yes"\n', "expected true or false"),
    ('[dedup]\nkeep = \n', "not valid TOML"),
    ('dedup = 3\n', "[dedup] must be a table"),
])
def test_a_bad_config_file_is_a_usage_error_naming_the_file_and_the_key(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["dedup", WIRE, "--out", str(tmp_path / "k.jsonl"), "--clusters", str(tmp_path / "c.jsonl"),
                 "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and str(config) in err and message in err, err
    assert not (tmp_path / "c.jsonl").exists()


def test_every_output_gets_a_sidecar_that_repeats_the_run(tmp_path, capsys):
    kept, clusters = _dedup(tmp_path, "first", "--keep", "cleanest", "--min-coverage", "0.7")
    for name in ("first.kept.jsonl", "first.clusters.jsonl"):
        meta = json.loads((tmp_path / f"{name}.meta.json").read_text(encoding="utf-8"))
        assert meta["command"] == "dedup" and meta["options"]["keep"] == "cleanest"
        assert meta["options"]["min_coverage"] == 0.7 and "out" not in meta["options"]
        assert meta["config"]["min_coverage"] == 0.7
        assert meta["inputs"] == [{"path": WIRE, "bytes": Path(WIRE).stat().st_size}]
        assert meta["counts"]["documents"] == 26 and meta["counts"]["removed"] == 26 - meta["counts"]["clusters"]
        assert meta["argv"][:2] == ["dedup", WIRE] and "fingerprint" in meta["seconds"]
    sidecar = str(tmp_path / "first.clusters.jsonl.meta.json")
    assert _dedup(tmp_path, "again", "--config", sidecar) == (kept, clusters)
    assert (kept, clusters) != _dedup(tmp_path, "plain")
    capsys.readouterr()
    assert main(["query", "--corpus", WIRE, str(EXAMPLES / "query-story.txt"), "--config", sidecar]) == 2
    assert "written by 'neardup dedup'" in capsys.readouterr().err


def test_an_output_on_stdout_gets_no_sidecar(tmp_path, capsys):
    assert main(["dedup", WIRE, "--out", "-", "--clusters", str(tmp_path / "c.jsonl"), "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "c.jsonl.meta.json"]


def test_the_readme_config_example_works_as_written(tmp_path):
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```toml\n") + len("```toml\n")
    config = tmp_path / "neardup.toml"
    config.write_text(readme[start:readme.index("```", start)], encoding="utf-8")
    assert _dedup(tmp_path, "file", "--config", str(config)) == \
        _dedup(tmp_path, "hand", "--workers", "2", "--keep", "cleanest", "--min-coverage", "0.7")
