"""Outputs are written whole or not at all, and never over an input of the same search."""

import os
import stat

import pytest

from lossearch import LossConfig
from lossearch._files import refuse_inputs, write_text
from lossearch.study.stored import StoredStudy
from tests.fakes import FakeRunner, fake_search


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "best_loss.json"
    target.write_text("the old one")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        LossConfig("ce").to_json(target)
    assert target.read_text() == "the old one"
    assert [p.name for p in tmp_path.iterdir()] == ["best_loss.json"]


def test_a_device_is_written_through_and_a_folder_refused(tmp_path):
    assert write_text("/dev/null", "x") == "/dev/null"  # not replaced by a regular file
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    with pytest.raises(ValueError, match="is a folder"):
        write_text(tmp_path, "x")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_umasks_mode_keep_an_existing_files_and_refuse_a_read_only_one(
    tmp_path, umask
):
    """On main every export was created 0600 and replaced a 0644 or read-only file as 0600."""
    new, kept, locked = (tmp_path / name for name in ("new.json", "kept.json", "locked.json"))
    old_mask = os.umask(umask)
    try:
        LossConfig("ce").to_json(new)
        kept.write_text("old")
        os.chmod(kept, 0o640)
        LossConfig("focal", {"gamma": 2.0}).to_json(kept)
        locked.write_text("old")
        os.chmod(locked, 0o444)
        with pytest.raises(ValueError, match="locked.json' is read-only; lossearch does not"):
            write_text(locked, "new")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and "focal" in kept.read_text()
    assert locked.read_text() == "old" and stat.S_IMODE(locked.stat().st_mode) == 0o444


def test_a_full_disk_after_the_search_prints_the_best_loss(tmp_path, capsys):
    """On main `demo -o /dev/full` lost a finished search."""
    from types import SimpleNamespace

    from lossearch import cli

    config = LossConfig("focal", {"gamma": 2.0})
    result = SimpleNamespace(export=config.to_json, best_config=config)
    args = SimpleNamespace(output="/dev/full", report=None, model=None)
    with pytest.raises(RuntimeError, match="could not write '/dev/full'"):
        cli._write_outputs(result, args)
    assert LossConfig.from_json(capsys.readouterr().out) == config


def test_an_output_naming_an_input_is_refused(tmp_path):
    data = tmp_path / "data.npz"
    data.write_bytes(b"")
    refuse_inputs("-o", tmp_path / "other.json", {"the data file": data, "the storage": None})
    with pytest.raises(ValueError, match=r"-o: '.*data.npz' is the data file of this command"):
        refuse_inputs("-o", tmp_path / "." / "data.npz", {"the data file": data})


def test_a_result_will_not_export_or_report_over_its_storage(tmp_path, mlflow_uri, experiment):
    """On main, ``export`` wrote the JSON over the study database and exited 0."""
    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=2, storage=storage, study_name="s"
    )
    for write in (result.export, result.report):
        with pytest.raises(ValueError, match="is the storage of this command"):
            write(tmp_path / "study.db")
    assert StoredStudy.load(storage, "s").closed  # the study is intact
    assert result.export(tmp_path / "best.json") == str(tmp_path / "best.json")


def test_the_cli_saves_a_model_with_the_same_modes(tmp_path):
    import keras

    from lossearch.cli import _save_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    new, locked = tmp_path / "new.keras", tmp_path / "locked.keras"
    locked.write_text("old")
    os.chmod(locked, 0o444)
    old_mask = os.umask(0o027)
    try:
        _save_model(model, str(new))
        with pytest.raises(ValueError, match="read-only"):
            _save_model(model, str(locked))
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640 and locked.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.keras", "new.keras"]


def test_the_cli_refuses_a_read_only_output_before_the_search(tmp_path, capsys):
    from lossearch import cli

    locked = tmp_path / "best.json"
    locked.write_text("old")
    os.chmod(locked, 0o444)
    assert cli.main(["demo", "--trials", "1", "-o", str(locked)]) == 2
    assert "--output: " in capsys.readouterr().err and locked.read_text() == "old"
