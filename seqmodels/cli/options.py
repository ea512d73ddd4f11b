"""Options shared by the commands, with defaults and choices taken from the config dataclasses.

Every setting a run stores is a field of DataConfig, ModelConfig, TrainConfig or SeriesConfig;
the option of the same name takes its default and choices from there, and `config_from`
builds the config from the options, so nothing is typed twice. These modules import no
TensorFlow, so options and preconditions are checked before it loads.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, TypeVar

import click

from seqmodels.data.config import (
    BLOCKWISE_UNDECODABLE,
    DECODE_ERRORS,
    DEFAULT_SPLITS,
    LEVELS,
    NORMALIZATIONS,
    TOKENIZER_CHOICES,
    DataConfig,
    check_fractions,
)
from seqmodels.data.tokenizers.subword import DEFAULT_VOCAB_SIZE
from seqmodels.errors import SeqmodelsError, describe, render
from seqmodels.lm.config import WindowConfig
from seqmodels.models.config import CELL_NAMES, EMBEDDING_INITS, MAX_LAYERS, ModelConfig
from seqmodels.training.config import (
    DEFAULT_LR,
    NO_BUDGET,
    ON_NAN,
    OPTIMIZERS,
    RESUMABLE,
    SCHEDULES,
    RunOptions,
    TrainConfig,
    parse_duration,
)
from seqmodels.training.distribute import STRATEGIES
from seqmodels.training.timing import command_started

T = TypeVar("T")

# settings whose command-line parameter has another name
PARAMETER_OF = {"cluster": "workers_spec", "callbacks": "callback", "use_cache": "no_cache",
                "progress": "quiet", "name": "tokenizer"}
_RUNNING: list[click.Command | None] = [None]  # the command this process runs now


class CommandGroup(click.Group):
    """A group that notes which command runs, so errors can name that command's options."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, click.Group):
            _RUNNING[0] = command
        return name, command, rest


class SectionedCommand(click.Command):
    """A command whose --help lists its options in sections (data, model, training, run) by
    the settings class each belongs to."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        titled = help_sections()
        sections: dict[str, list[tuple[str, str]]] = {name: [] for name, _ in titled}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                title = next((t for t, names in titled[:-1] if param.name in names),
                             titled[-1][0])  # the last section holds everything else
                sections[title].append(record)
        for name, records in sections.items():
            if records:
                with formatter.section(name):
                    formatter.write_dl(records)


def help_sections() -> list[tuple[str, set[str]]]:
    """(section title, the option names it holds) in the order --help shows them; the last
    holds everything else."""
    def names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    return [("Data options (how text becomes tokens)",
             names(DataConfig) | {"cache_dir", "no_cache", "workers"}),
            ("Model options", names(ModelConfig) | {"init_from"}),
            ("Training options", (names(TrainConfig) | names(WindowConfig) | {"no_clip"})
             - {"tensorboard", "checkpoint_every", "on_nan", "max_time"}),
            ("Run options (where, how long, what it shows)", set())]


def json_option(what: str = "the results"):
    """--json: one JSON object on stdout instead of text, the same flag on every command that
    prints results (messages stay on stderr)."""
    return click.option("--json", "as_json", is_flag=True,
                        help=f"Print {what} as one JSON object on stdout (messages stay on "
                             f"stderr).")


def option_name(setting: str) -> str:
    """The command-line spelling of a setting in the command that runs: max_time -> --max-time;
    corpus -> CORPUS where it is an argument (train), --corpus where an option (evaluate)."""
    wanted = PARAMETER_OF.get(setting, setting)
    command = _RUNNING[0]
    for param in command.params if command is not None else []:
        if param.name == wanted:
            if isinstance(param, click.Argument):
                return param.human_readable_name
            return max(param.opts, key=len)
    return "--" + wanted.replace("_", "-")


def cli_message(exc: SeqmodelsError) -> str:
    """A library error's message with each setting it names shown as its option."""
    return render(exc.message, option_name)


# options that say how this process runs (RunOptions and the command line's own), not what is
# trained: free to differ on --resume, as are the RESUMABLE training settings
CLI_PROCESS_OPTIONS = {"resume", "quiet", "config", "callback", "no_cache", "workers_spec",
                       "sample_every", "sample_prompt", "sample_temperature", "sample_length"}
RESUME_MAY_CHANGE = (frozenset(f.name for f in dataclasses.fields(RunOptions))
                     | CLI_PROCESS_OPTIONS | set(RESUMABLE))


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """--max-time: seconds from '90s', '10m', '2h'; 'none' is NO_BUDGET (removes a resumed
    run's budget); a budget of 0 is refused."""
    if value is not None and value.strip().lower() == "none":
        return NO_BUDGET
    try:
        seconds = None if value is None else parse_duration(value)
    except SeqmodelsError as exc:
        raise click.BadParameter(cli_message(exc)) from None
    if seconds is not None and seconds <= 0:
        raise click.BadParameter(f"{value!r} is no time at all; give a budget above 0")
    return seconds


def imported_callbacks(ctx: click.Context, param: click.Parameter,
                       value: tuple[str, ...]) -> list:
    """--callback MODULE:NAME: each a Keras callback object, or a class or function called with
    no arguments to make one; modules are found from the current folder too."""
    if not value:
        return []
    import importlib
    import os
    import sys

    from seqmodels.backend import import_keras

    keras = import_keras()  # before the user's module imports keras, so it runs on TensorFlow
    made = []
    for spec in value:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise click.BadParameter(f"{spec!r}: give MODULE:NAME, such as mycallbacks:Logger")
        # the current folder is searched while the user's module imports, and only then: a
        # file there (regex.py, tqdm.py) must not hide a library seqmodels imports later
        here = os.getcwd()
        sys.path.insert(0, here)
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except ImportError as exc:
            raise click.BadParameter(f"{spec!r}: cannot import {module_name} ({exc})") from None
        except AttributeError:
            raise click.BadParameter(f"{spec!r}: {module_name} has no {attr}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's module fails as it loads: one line
            raise click.BadParameter(f"{spec!r}: importing {module_name} raised "
                                     f"{describe(exc)}") from None
        finally:
            if here in sys.path:
                sys.path.remove(here)
        if not isinstance(obj, keras.callbacks.Callback) and callable(obj):
            try:
                obj = obj()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit, GeneratorExit: the user's code fails
                raise click.BadParameter(f"{spec!r}: calling {attr}() raised "
                                         f"{describe(exc)}") from None
        if not isinstance(obj, keras.callbacks.Callback):
            raise click.BadParameter(f"{spec!r} is not a keras.callbacks.Callback (nor makes one "
                                     f"when called with no arguments)")
        made.append(obj)
    return made


class NamedPath(click.Path):
    """A click.Path that refuses an empty one ('' would quietly mean the default or '.')."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path names no file or folder", param, ctx)
        return super().convert(value, param, ctx)


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (which compare False to any bound)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


def splits_option(default: tuple[float, float, float], help: str):
    """--splits train,validation,test, checked by check_fractions."""

    def parse(ctx, param, value: str) -> tuple[float, float, float]:
        try:
            return check_fractions(tuple(float(p) for p in value.split(",")))
        except ValueError:
            raise click.BadParameter(f"give three numbers like "
                                     f"{','.join(map(str, default))}") from None
        except SeqmodelsError as exc:
            raise click.BadParameter(cli_message(exc)) from None

    return click.option("--splits", default=",".join(f"{f:g}" for f in default),
                        show_default=True, callback=parse, help=help)


def stack(options: list, f):
    """Apply click decorators so they appear in --help in the order listed."""
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


def config_from(cls: type[T], kw: dict[str, Any], **fixed: Any) -> T:
    """cls built from the options named like its fields (fixed values win)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in kw.items() if k in names and k not in fixed}, **fixed)


def given_options(ctx: click.Context) -> set[str]:
    """The names of the options (not arguments) given: on the command line, in a SEQMODELS_*
    environment variable or in the --config file."""
    from click.core import ParameterSource

    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
             ParameterSource.DEFAULT_MAP)
    return {p.name for p in ctx.command.params if isinstance(p, click.Option)
            and ctx.get_parameter_source(p.name) in given}


MAX_CONFIG_FILE_BYTES = 2**20


def _read_config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--config FILE.toml: its keys become the command's defaults (the command line and
    SEQMODELS_* variables still win); unknown keys are refused, naming them."""
    if value is None:
        return
    import tomllib

    from seqmodels.files import read_regular

    try:
        data = tomllib.loads(read_regular(value, MAX_CONFIG_FILE_BYTES).decode("utf-8"))
    except SeqmodelsError as exc:
        raise click.BadParameter(cli_message(exc), ctx, param) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{value}: not a TOML file ({exc})", ctx, param) from None
    except RecursionError:
        raise click.BadParameter(f"{value}: not a TOML file (nested too deeply)", ctx,
                                 param) from None
    names = {p.name: p for p in ctx.command.params if p.name != param.name}
    settings = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(k for k in settings if k not in names)
    if unknown:
        raise click.BadParameter(f"{value}: unknown key(s) {', '.join(unknown)} (the keys are "
                                 f"the command's options, e.g. max-time = \"10m\")", ctx, param)
    for key, v in settings.items():  # TOML lists for multiple options and arguments only
        if isinstance(v, (dict, list)) and not (isinstance(v, list) and (
                names[key].multiple or names[key].nargs != 1)):
            raise click.BadParameter(f"{value}: {key} must be a single value", ctx, param)
        for item in v if isinstance(v, list) else [v]:
            problem = _toml_type_problem(names[key], item)
            if problem:
                raise click.BadParameter(f"{value}: {key.replace('_', '-')} {problem}, not "
                                         f"{item!r}", ctx, param)
        if names[key].multiple and not isinstance(v, list):  # callback = "mod.py": one of them
            settings[key] = [v]
    # an empty list gives nothing: the option is left unset, not given as empty
    settings = {k: v for k, v in settings.items() if v != []}
    ctx.default_map = {**(ctx.default_map or {}), **settings}


def _toml_type_problem(option: click.Parameter, item: object) -> str | None:
    """Why a TOML value cannot be this option's (click would truncate 2.7 to 2 for an integer
    option, or take true as 1), or None."""
    kind = option.type
    if isinstance(option, click.Option) and option.is_flag:
        return None if isinstance(item, bool) else "must be true or false"
    if isinstance(kind, click.types.IntParamType):
        return None if isinstance(item, int) and not isinstance(item, bool) else (
            "must be a whole number")
    if isinstance(kind, click.types.FloatParamType):
        return None if isinstance(item, (int, float)) and not isinstance(item, bool) else (
            "must be a number")
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):  # or a TOML date
        return "must be a string or number"
    if isinstance(kind, click.Path) and not isinstance(item, str):  # click keeps out = 5 an int
        return "must be a path in quotes"
    return None


config_file_option = click.option(
    "--config", type=NamedPath(dir_okay=False), is_eager=True, expose_value=False,
    callback=_read_config_file,
    help="TOML file of option values (keys as the options: lr = 0.004, max-time = \"10m\"); "
         "the command line and SEQMODELS_* environment variables win.")


def check_resume_options(ctx: click.Context, kw: dict, argument: str, given_argument: bool
                         ) -> None:
    """--resume keeps a run's settings: refuse options (and the data argument) that would
    change them."""
    if not kw["resume"]:
        return
    given = given_options(ctx)
    extra = [option_name(n) for n in sorted(given - RESUME_MAY_CHANGE)]
    if given_argument:
        extra.append(argument)
    if extra:
        raise click.UsageError(f"--resume continues a run with its saved settings; these "
                               f"cannot change: {', '.join(extra)}")


def resume_changes(ctx: click.Context, kw: dict) -> dict[str, Any] | None:
    """With --resume, the resumable settings given on the command line (the run keeps the
    others); None for a new run."""
    if not kw["resume"]:
        return None
    given = given_options(ctx)
    return {name: kw[name] for name in RESUMABLE if name in given}


def check_optimizer_options(ctx: click.Context, kw: dict) -> None:
    """Refuse settings the optimizer would ignore: a clipping threshold with --no-clip, and
    decay settings for a schedule that does not decay that way."""
    given = given_options(ctx)
    if kw["no_clip"] and given & {"clipnorm", "clipvalue"}:
        raise click.UsageError("--no-clip turns clipping off; drop --clipnorm/--clipvalue")
    if kw.get("resume"):
        return  # the run's own schedule; its decay options are refused as fixed settings
    for name, schedules in (("decay_factor", ("step", "plateau")), ("decay_after", ("step",))):
        if name in given and kw["schedule"] not in schedules:
            raise click.UsageError(f"{option_name(name)} applies to --schedule "
                                   f"{' or '.join(schedules)}, not {kw['schedule']}")


def train_config_from(kw: dict[str, Any], **fixed: Any) -> TrainConfig:
    """The TrainConfig of a training command's options (--no-clip turns both clips off)."""
    if kw["no_clip"]:
        fixed = {"clipnorm": None, "clipvalue": None, **fixed}
    return config_from(TrainConfig, kw, **fixed)


def model_options(defaults: ModelConfig, embedding: bool = True, fitted: str = ""):
    """The recurrent stack: cell, depth, width, dropout and penalties (embedding: a language
    model's token embedding, and dropout on it; fitted: when the size is fitted instead of the
    defaults, in words)."""
    fitted = f" {fitted}" if fitted else ""

    def decorate(f):
        options = [
            click.option("--cell", type=click.Choice(CELL_NAMES), default=defaults.cell,
                         show_default=True, help="Recurrent cell (rnn = SimpleRNN)."),
            click.option("--layers", type=click.IntRange(1, MAX_LAYERS), default=defaults.layers,
                         show_default=True, help=f"Recurrent layers stacked.{fitted}"),
            click.option("--units", type=click.IntRange(min=1), default=defaults.units,
                         show_default=True,
                         help=f"Units (hidden size) of each recurrent layer.{fitted}"),
        ]
        if embedding:
            options += [
                click.option("--embedding-dim", type=click.IntRange(min=1),
                             default=defaults.embedding_dim, show_default=True,
                             help="Size of the token embedding."),
                click.option("--embedding-init", type=click.Choice(EMBEDDING_INITS),
                             default=defaults.embedding_init, show_default=True,
                             help="Initial embedding: uniform(+-0.05), Keras' default, or "
                                  "normal N(0, 1), PyTorch's."),
            ]
        options += [
            click.option("--dropout", type=Finite(0, 1, max_open=True), default=defaults.dropout,
                         show_default=True,
                         help="Dropout on inputs and between layers." if embedding
                         else "Dropout after each recurrent layer."),
            click.option("--recurrent-dropout", type=Finite(0, 1, max_open=True),
                         default=defaults.recurrent_dropout, show_default=True,
                         help="Dropout on the recurrent state (turns cuDNN off)."),
            click.option("--l1", type=Finite(min=0), default=defaults.l1, show_default=True,
                         help="L1 penalty on kernels and recurrent kernels."),
            click.option("--l2", type=Finite(min=0), default=defaults.l2, show_default=True,
                         help="L2 penalty on kernels and recurrent kernels."),
        ]
        return stack(options, f)

    return decorate


def optimizer_options(defaults: TrainConfig, batch_help: str = "Windows per step."):
    """How the weights move: batches, optimizer, rate and schedule, clipping, early stopping."""
    rates = ", ".join(f"{name} {rate:g}" for name, rate in DEFAULT_LR.items())
    return lambda f: stack([
        click.option("--epochs", type=click.IntRange(min=1), default=defaults.epochs,
                     show_default=True, help="Passes over the training split."),
        click.option("--batch-size", type=click.IntRange(min=1), default=defaults.batch_size,
                     show_default=True, help=batch_help),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=defaults.optimizer,
                     show_default=True, help="Optimizer (sgd uses momentum 0.9)."),
        click.option("--lr", type=Finite(min=0, min_open=True), default=defaults.lr,
                     help=f"Learning rate [default: {rates}]."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=defaults.schedule,
                     show_default=True,
                     help="Learning-rate schedule (cosine: to 0 at the last epoch's end or at "
                          "the end of --max-time, whichever comes first)."),
        click.option("--warmup", type=click.IntRange(min=0), default=defaults.warmup,
                     show_default=True,
                     help="Raise the rate linearly from 0 over this many first steps."),
        click.option("--decay-factor", type=Finite(0, 1, min_open=True),
                     default=defaults.decay_factor, show_default=True,
                     help="step/plateau: multiply the rate by this."),
        click.option("--decay-after", type=click.IntRange(min=0), default=defaults.decay_after,
                     show_default=True, help="step: decay once per epoch after this epoch."),
        click.option("--clipnorm", type=Finite(min=0, min_open=True), default=defaults.clipnorm,
                     show_default=True, help="Clip the global gradient norm to this."),
        click.option("--clipvalue", type=Finite(min=0, min_open=True),
                     default=defaults.clipvalue, help="Clip each gradient element to [-v, v]."),
        click.option("--no-clip", is_flag=True, help="No gradient clipping at all."),
        click.option("--patience", type=click.IntRange(min=1), default=defaults.patience,
                     help="Stop after this many validations without a better validation loss "
                          "(a validation comes at each epoch's end, and every --eval-every "
                          "steps)."),
    ], f)


def run_options(defaults: TrainConfig):
    """How a run goes: time budget, seeds, checkpoints, logging, what to do on NaN."""
    return lambda f: stack([
        click.option("--max-time", callback=duration, default=None,
                     help="Wall-time budget of the whole command such as 90s, 10m, 2h "
                          "(start-up, compilation and the last validation included); stops "
                          "cleanly and keeps the best model. A resumed run keeps its budget; "
                          "'none' removes it."),
        click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=defaults.seed,
                     show_default=True, help="Seed for initialisation, shuffling and dropout."),
        click.option("--deterministic", is_flag=True, help="Enable TensorFlow op determinism."),
        click.option("--checkpoint-every", type=click.IntRange(min=1),
                     default=defaults.checkpoint_every,
                     help="Also checkpoint every N steps (always at each epoch end)."),
        click.option("--eval-every", type=click.IntRange(min=1), default=defaults.eval_every,
                     help="Validate every N steps as well as at each epoch's end and when "
                          "training stops [default: often enough for validation to take about "
                          "5% of the training time, and at least 100 steps apart; under "
                          "--max-time, validations past 3% of the budget are skipped, but for "
                          "the last, unless --eval-every, --patience, --schedule plateau or a "
                          "--callback needs them]."),
        click.option("--steps-per-epoch", type=click.IntRange(min=1),
                     default=defaults.steps_per_epoch,
                     help="Cap the steps of each epoch (quick runs)."),
        click.option("--tensorboard", is_flag=True, help="Write TensorBoard logs into the run."),
        click.option("--callback", multiple=True, callback=imported_callbacks,
                     metavar="MODULE:NAME",
                     help="A Keras callback to drive from the training loop: an object, or a "
                          "class or function making one with no arguments (the current folder "
                          "is searched for MODULE); repeat for several."),
        click.option("--on-nan", type=click.Choice(ON_NAN), default=defaults.on_nan,
                     show_default=True,
                     help="When the loss turns NaN/Inf: stop (keeping the last good checkpoint), "
                          "or reload that checkpoint at half the learning rate, at most 3 "
                          "times."),
        click.option("--log-every", type=click.IntRange(min=1), default=None,
                     help="Print a progress line to stderr every N steps (for logs and pipes)."),
        click.option("--xla/--no-xla", default=defaults.xla,
                     help="Compile the training and evaluation steps with XLA [default: on for "
                          "LSTM/GRU language models of 64 units or more on a CPU, where it "
                          "pays for its few seconds of compiling]."),
    ], f)


def resume_options(what: str):
    """--out and --resume of a training command; what: the default run folder's name."""
    changeable = ", ".join(option_name(n) for n in RESUMABLE)
    return lambda f: stack([
        click.option("--out", type=NamedPath(file_okay=False), default=None,
                     help=f"Run directory [default: runs/<date-time>-{what}]."),
        click.option("--resume", type=NamedPath(file_okay=False), default=None,
                     help=f"Continue the run in this directory from its last checkpoint, with "
                          f"its saved settings (only {changeable} and how this process runs "
                          f"can change; CORPUS, where a run has moved, only when its content is "
                          f"the same)."),
    ], f)


def distribution_options(f):
    """--strategy and the cluster of --strategy multi-worker."""
    return stack([
        click.option("--strategy", type=click.Choice(STRATEGIES), default=STRATEGIES[0],
                     show_default=True,
                     help="tf.distribute strategy: mirrored = every local GPU (or CPU device), "
                          "multi-worker = several machines (TF_CONFIG or --workers-spec). "
                          "--batch-size stays the global batch, split over the replicas."),
        click.option("--workers-spec", default=None, metavar="HOST:PORT,...",
                     help="multi-worker: every worker's address, the chief first (instead of "
                          "TF_CONFIG); start the same command on each with its --worker-index."),
        click.option("--worker-index", type=click.IntRange(min=0), default=None,
                     help="multi-worker: this process's place in --workers-spec (0: the chief, "
                          "which alone writes the run directory)."),
    ], f)


def run_options_from(kw: dict[str, Any], callbacks: list | None = None) -> RunOptions:
    """The RunOptions of a training command's options."""
    return RunOptions(progress=not kw["quiet"], log_every=kw["log_every"],
                      workers=kw.get("workers"), strategy=kw.get("strategy", "default"),
                      cluster=kw.get("workers_spec"), worker_index=kw.get("worker_index"),
                      callbacks=list(callbacks if callbacks is not None else kw["callback"]),
                      cache_dir=kw.get("cache_dir"), use_cache=not kw.get("no_cache", False),
                      started=command_started())


def window_options(defaults: WindowConfig):
    """--seq-len, --stride and --stateful: how the token stream is cut into windows."""
    return lambda f: stack([
        click.option("--seq-len", "-T", type=click.IntRange(min=1), default=defaults.seq_len,
                     show_default=True, help="Tokens per window (truncated BPTT length)."),
        click.option("--stride", type=click.IntRange(min=1), default=defaults.stride,
                     help="Step between window starts [default: the window length]."),
        click.option("--stateful", is_flag=True,
                     help="Carry the hidden state across consecutive windows (truncated BPTT)."),
    ], f)


eval_tokens_option = click.option(
    "--eval-tokens", type=click.IntRange(min=1), default=WindowConfig().eval_tokens,
    help="Validate on the first N tokens of the validation split (for a large split) "
         "[default: all of it].")


def _encoding(ctx, param, value: str) -> str:
    """The name of a text encoding Python knows."""
    import codecs

    try:
        info = codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (try utf-8 or latin-1)") from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, hex: bytes-to-bytes
        raise click.BadParameter(f"{value!r} is not a text encoding (try utf-8 or latin-1)")
    if info.name in BLOCKWISE_UNDECODABLE:
        raise click.BadParameter(BLOCKWISE_UNDECODABLE[info.name])
    return value


def cache_dir_option(f):
    """--cache-dir: where encoded corpora are kept."""
    return click.option("--cache-dir", type=NamedPath(file_okay=False), default=None,
                        help="Where encoded corpora are cached [default: ~/.cache/seqmodels].")(f)


def data_options(f):
    """Options that decide how a corpus becomes token ids (shared by every data command)."""
    d = DataConfig()
    return stack([
        click.argument("corpus", nargs=-1),
        click.option("--level", type=click.Choice(LEVELS), default=d.level, show_default=True,
                     help="Kind of token: char (code points), word (an NLTK tokenizer), byte "
                          "(UTF-8 bytes: any text fits, nothing is unknown) or subword (byte "
                          "pairs merged on the training split, as GPT-2's BPE)."),
        click.option("--tokenizer", type=click.Choice(TOKENIZER_CHOICES), default=d.tokenizer,
                     help="Word tokenizer (word level only; default nltk = word_tokenize)."),
        click.option("--lowercase", is_flag=True, help="Lowercase the text first."),
        click.option("--normalize", type=click.Choice(NORMALIZATIONS), default=d.normalize,
                     show_default=True, help="Unicode normalisation."),
        click.option("--encoding", default=d.encoding, show_default=True, callback=_encoding,
                     help="Text encoding of the corpus files."),
        click.option("--errors", type=click.Choice(DECODE_ERRORS), default=d.errors,
                     show_default=True, help="What to do with bytes that do not decode."),
        click.option("--stopwords", type=NamedPath(dir_okay=False), default=d.stopwords,
                     help="File of words (one a line) to remove (word level)."),
        click.option("--min-freq", type=click.IntRange(min=1), default=d.min_freq,
                     show_default=True,
                     help="Tokens seen fewer times in the training split become <unk>."),
        click.option("--max-vocab", "--vocab-size", "max_vocab", type=click.IntRange(min=3),
                     default=d.max_vocab,
                     help="Cap the vocabulary size, <pad> and <unk> included; at subword level, "
                          f"the size its merges grow to [default: {DEFAULT_VOCAB_SIZE}]."),
        splits_option(DEFAULT_SPLITS, "Train,validation,test fractions (contiguous)."),
        cache_dir_option,
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
        click.option("--workers", type=click.IntRange(min=1), default=RunOptions().workers,
                     help="Processes that tokenize the corpus [default: all cores; 1: this "
                          "process only]."),
    ], f)


def data_config_from(kw: dict[str, Any]) -> DataConfig:
    """The DataConfig of a command's data options."""
    return config_from(DataConfig, kw, corpus=list(kw["corpus"]))
