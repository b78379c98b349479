from pathlib import Path

import pytest

from generator.__main__ import main as generate


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """48 samples of 4 cameras x 8 frames x 32 x 32: enough for every split, seconds to make."""
    where = tmp_path_factory.mktemp("train_data")
    (where / "gen.yaml").write_text("image_size: 32\nframes: 8\n")
    root = where / "ds"
    args = ["--n", "48", "--out", root, "--workers", "1", "--config", where / "gen.yaml", "--quiet"]
    assert generate([str(a) for a in args]) == 0
    return root


@pytest.fixture
def stop_after_first_epoch(monkeypatch):
    """Call it to make the next ``Run.fit`` raise KeyboardInterrupt once epoch 1 is saved."""
    from train.trajectory.loop import Run

    fit = Run.fit

    def fit_interrupted_after_first_epoch(self, on_epoch_end=None):
        def stop(epoch):
            if epoch == 1:
                raise KeyboardInterrupt

        return fit(self, stop)

    return lambda: monkeypatch.setattr(Run, "fit", fit_interrupted_after_first_epoch)
