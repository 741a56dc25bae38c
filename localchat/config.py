"""Where localchat keeps its state, and the settings file.

Every state directory comes from platformdirs; `LOCALCHAT_HOME=DIR` puts all of them under DIR (tests and
portable installs use this).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from localchat.errors import InvalidSetting, LocalchatError

APP_NAME = "localchat"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def database(self) -> Path:
        return self.data_dir / "localchat.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def engine_log(self) -> Path:
        return self.log_dir / "engine.log"

    @property
    def saved_states(self) -> Path:
        """The engine's saved KV states of recent chats (engine/saved_states.py), a folder per model file."""
        return self.cache_dir / "kv-states"

    @property
    def app_log(self) -> Path:
        return self.log_dir / "app.log"

    def ensure(self) -> Paths:
        for directory in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LocalchatError(
                    f"cannot create {directory}: {exc.strerror} — set LOCALCHAT_HOME to a writable directory"
                ) from None
        return self


def paths() -> Paths:
    home = os.environ.get("LOCALCHAT_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache", root / "logs")
    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME)),
        Path(platformdirs.user_data_dir(APP_NAME)),
        Path(platformdirs.user_cache_dir(APP_NAME)),
        Path(platformdirs.user_log_dir(APP_NAME)),
    )


# Every binding id the app defines (tests/tui checks this against the app's bindings): [keys] accepts only these.
BINDING_IDS = frozenset(
    {
        "app.quit",
        "chat.new",
        "chat.stop",
        "chat.regenerate",
        "chat.edit",
        "chat.copy",
        "chat.settings",
        "chat.prompts",
        "chat.thinking",
        "chat.tokens",
        "chat.lab",
        "lab.regenerate_from",
        "lab.leave",
        "chat.rename",
        "chat.delete",
        "chat.search",
        "model.pick",
        "model.catalog",
        "message.copy",
        "message.copy_code",
        "message.edit",
        "composer.send",
        "composer.newline",
        "settings.save",
        "settings.save_default",
        "prompts.save",
        "prompts.delete",
        "prompts.default",
        "catalog.remove",
        "arena.open",
        "arena.leaderboard",
        "arena.stop",
        "arena.close",
        "arena.continue",
        "leaderboard.settings",
    }
)

# Each section lists the keys it accepts; anything else is a typo we report rather than ignore.
KNOWN_KEYS: dict[str, set[str]] = {
    "keys": set(BINDING_IDS),  # binding id -> keys, e.g. "chat.regenerate" = "f5" (see README)
    "engine": {"ctx", "gpu_layers", "threads", "backend_sampling", "mmap", "lookup", "state_cache_mb", "draft"},
    "sampling": {
        "preset",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "max_tokens",
        "seed",
    },
    "endpoints": set(),  # [endpoints.NAME] tables, checked by _check_endpoints
}
ENDPOINT_KEYS = {"url", "api_key_env", "models", "ctx"}


def _check_endpoints(path: Path, endpoints: dict[str, object]) -> None:
    """[endpoints.NAME]: url (http or https), api_key_env (the name of an environment variable: the key itself is
    never in the file), models (optional list of names), ctx (the server's context size, for servers that do not
    say it)."""
    for name, table in endpoints.items():
        where = f"settings file {path}: endpoints.{name}"
        if not isinstance(table, dict):
            raise InvalidSetting(f'{where} must be a table: [endpoints.{name}] with url = "http://host:8080/v1"')
        if "api_key" in table:
            raise InvalidSetting(f"{where}.api_key: keys never go in the file; name the variable with api_key_env")
        unknown = set(table) - ENDPOINT_KEYS
        if unknown:
            known = ", ".join(sorted(ENDPOINT_KEYS))
            raise InvalidSetting(f"{where}: unknown key {sorted(unknown)[0]} (known: {known})")
        url = table.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidSetting(f'{where}.url must be the API base, e.g. "http://host:8080/v1" (got {url!r})')
        env = table.get("api_key_env", "OPENAI_API_KEY")
        if not isinstance(env, str) or not env.replace("_", "").isalnum():
            raise InvalidSetting(f"{where}.api_key_env must name an environment variable (got {env!r})")
        models = table.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise InvalidSetting(f"{where}.models must be a list of model names (got {models!r})")
        ctx = table.get("ctx", 0)
        if isinstance(ctx, bool) or not isinstance(ctx, int) or ctx < 0:
            raise InvalidSetting(f"{where}.ctx must be the server's context size in tokens, e.g. 8192 (got {ctx!r})")


def load_settings(path: Path | None = None) -> dict[str, dict[str, object]]:
    """Read the settings file strictly: unknown sections or keys are an error that names them."""
    path = path or paths().config_file
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise InvalidSetting(f"cannot read settings file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidSetting(f"settings file {path} is not UTF-8 text: fix or delete it") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSetting(f"settings file {path} is not valid TOML ({exc}): fix or delete it") from None
    for section, values in raw.items():
        if section not in KNOWN_KEYS or not isinstance(values, dict):
            raise InvalidSetting(
                f"settings file {path}: unknown section [{section}] (known: {', '.join(sorted(KNOWN_KEYS))})"
            )
        if section == "endpoints":
            _check_endpoints(path, values)
            continue
        unknown = set(values) - KNOWN_KEYS[section]
        if unknown:
            what = "binding id" if section == "keys" else "key"
            raise InvalidSetting(
                f"settings file {path}: unknown {what} {section}.{sorted(unknown)[0]} "
                f"(known: {', '.join(sorted(KNOWN_KEYS[section]))})"
            )
        if section == "keys":
            for binding, keys in values.items():
                if not isinstance(keys, str) or not all(k.strip() and " " not in k.strip() for k in keys.split(",")):
                    raise InvalidSetting(
                        f'settings file {path}: keys.{binding} must be a string of keys such as "f5" or '
                        f'"ctrl+g,f5" (got {keys!r})'
                    )
    return raw
