"""The `localchat` command. Each subcommand lives in localchat/commands and delegates to services."""

from __future__ import annotations

import sys

import click

from localchat import __version__
from localchat.commands.arena import arena
from localchat.commands.bench import bench
from localchat.commands.cache import cache
from localchat.commands.doctor import doctor
from localchat.commands.models import import_model, list_models, pull, rm, search, show
from localchat.commands.run import run
from localchat.commands.tokenize import tokenize
from localchat.errors import LocalchatError
from localchat.text import one_line


class Commands(click.Group):
    """The subcommands, and Ollama's other names for them (`ollama ls`), which the help leaves out."""

    ALIASES = {"ls": "list"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="localchat")
@click.option("--model", "-m", help="open the app with this model (name, alias or .gguf path) [last used]")
@click.pass_context
def cli(ctx: click.Context, model: str | None) -> None:
    """Chat with language models that run on your own machine. Without a command: the app."""
    if ctx.invoked_subcommand is None:
        open_app(model)


def open_app(model: str | None) -> None:
    app = build_app(model)
    if not sys.stdout.isatty():
        raise LocalchatError("the app needs a terminal: use `localchat run MODEL` for pipes and scripts")
    app.run()


def build_app(model: str | None):  # -> LocalchatApp (imported here: the app's imports stay out of other commands)
    """The app as the settings file configures it: keys, sampling defaults and [engine], checked as for `run`.
    A locked or damaged database fails here, in one line, before the screen changes."""
    from localchat.chat.sampling import from_settings
    from localchat.commands.options import build_load_options, build_lookup
    from localchat.config import load_settings, paths
    from localchat.tui.app import LocalchatApp

    settings = load_settings()
    keymap = {str(k): str(v) for k, v in settings.get("keys", {}).items()}
    sampling = from_settings(settings.get("sampling", {}))
    load_options = build_load_options({})  # [engine]: gpu_layers, threads, ctx
    return LocalchatApp(paths().ensure(), model, keymap, sampling, load_options, lookup=build_lookup(None))


for command in (run, pull, list_models, show, rm, import_model, search, tokenize, bench, doctor, cache, arena):
    cli.add_command(command)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"localchat: error: {one_line(message)}", err=True)  # it may quote a model file or a server
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user-facing error is one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="localchat", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "localchat"
        fail(f"{exc.format_message()} (see '{command} --help')")
    except click.Abort:
        sys.exit(130)
    except LocalchatError as exc:
        fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing more to say
        sys.exit(1)
