"""The committed summaries are what the committed sweeps produce, byte for byte."""
from pathlib import Path

import pytest

from gatesim import sweep
from gatesim.sweep import load_sweep
from gatesim.sweep.accuracy import jobs
from gatesim.sweep.points import points
from gatesim.train.run import checkpoint_path

ROOT = Path(__file__).resolve().parents[1]


def with_validations(folder: Path) -> Path:
    """`folder` holding the committed `gatesim validate --out reports` results, as reports/ does."""
    for path in (ROOT / "reports").glob("validate-*.json"):
        (folder / path.name).write_text(path.read_text())
    return folder


def test_paper_summary_regenerates_byte_for_byte(tmp_path):
    result = sweep(ROOT / "configs" / "sweeps" / "paper.yaml", out=with_validations(tmp_path), workers=2)
    assert result.files["markdown"].read_text() == (ROOT / "reports" / "paper.md").read_text()


def test_tfhe_summary_regenerates_byte_for_byte(tmp_path):
    result = sweep(ROOT / "configs" / "sweeps" / "tfhe.yaml", out=with_validations(tmp_path), workers=2)
    assert result.files["markdown"].read_text() == (ROOT / "reports" / "tfhe.md").read_text()


def test_adding_summary_regenerates_byte_for_byte_from_the_saved_training_runs(tmp_path):
    config = ROOT / "configs" / "sweeps" / "adding.yaml"
    cfg = load_sweep(config)
    _, runs = jobs(cfg, points(cfg), tmp_path)
    missing = [checkpoint_path(folder, **arguments).with_suffix(".json").name for folder, arguments in runs
               if not checkpoint_path(folder, **arguments).with_suffix(".json").is_file()]
    if missing:  # the key hashes the training code: a change there means training again (hours)
        pytest.skip(f"the training code changed since reports/train was saved ({len(missing)} runs to redo, "
                    f"e.g. {missing[0]}): run `gatesim sweep configs/sweeps/adding.yaml` and commit")
    result = sweep(config, out=with_validations(tmp_path), workers=1)
    assert result.files["markdown"].read_text() == (ROOT / "reports" / "adding.md").read_text()


def test_tfhe_accuracy_summary_regenerates_byte_for_byte_from_the_saved_runs(tmp_path):
    """The trained runs and their rounded scores are saved in reports/train (keyed by the code
    that computes them): the summary comes back from them without training."""
    from gatesim.sweep.accuracy import rounded_jobs
    from gatesim.sweep.rounded import rounded_path

    config = ROOT / "configs" / "sweeps" / "tfhe-accuracy.yaml"
    cfg = load_sweep(config)
    _, runs = jobs(cfg, points(cfg), tmp_path)
    needed = [checkpoint_path(folder, **arguments).with_suffix(".json") for folder, arguments in runs]
    needed += [rounded_path(checkpoint_path(folder, **arguments), bits)
               for folder, arguments, bits in rounded_jobs(cfg, points(cfg), tmp_path)]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        pytest.skip(f"the training or rounding code changed since reports/train was saved ({len(missing)} files, "
                    f"e.g. {missing[0]}): run `gatesim sweep configs/sweeps/tfhe-accuracy.yaml` and commit")
    result = sweep(config, out=with_validations(tmp_path), workers=1)
    assert result.files["markdown"].read_text() == (ROOT / "reports" / "tfhe-accuracy.md").read_text()
