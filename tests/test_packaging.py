"""The built wheel carries what the app needs at run time: themes and the stylesheet."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_themes_and_stylesheet(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    names = zipfile.ZipFile(next(tmp_path.glob("localchat-*.whl"))).namelist()
    themes = {Path(n).name for n in names if n.startswith("localchat/themes/")}
    assert themes == {p.name for p in (ROOT / "themes").glob("*.toml")} and len(themes) >= 3
    assert "localchat/tui/app.tcss" in names
