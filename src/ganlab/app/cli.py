"""Command-line plumbing shared by ganlab-train and ganlab-eval.

Before Hydra runs, every override is checked by composing the config, so a typo fails with
one line that lists the valid choices instead of Hydra's multi-line report; and a
:class:`GanlabError` raised while running becomes ``ganlab: error: <message>`` and exit 2.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ganlab.core.atomic import WriteFailed
from ganlab.core.errors import GanlabError, Interrupted

#: Hydra flags that take a value (the value is not an override).
_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
    "--config-dir", "-cd", "--experimental-rerun", "--info", "-i",
}


def config_dir() -> str:
    """The ``conf/`` folder (``GANLAB_CONFIG_DIR`` overrides it)."""
    env = os.environ.get("GANLAB_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    return str(Path(__file__).resolve().parents[3] / "conf")


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr (and the run's train.log) and exit."""
    say(f"ganlab: error: {message}")
    sys.exit(code)


def say(line: str, level: int = logging.ERROR) -> None:
    """Print ``line`` to stderr on a line of its own (a progress bar may be drawn half-way on
    the terminal) and append it to the run's log files (``train.log``), if any."""
    end_progress_line()
    print(line, file=sys.stderr, flush=True)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            record = logging.LogRecord("ganlab", level, __file__, 0, line, None, None)
            with contextlib.suppress(Exception):  # the log's own disk may be full
                handler.handle(record)


def end_progress_line() -> None:
    """End the line of every live tqdm bar (Lightning's draws on stdout without a newline)
    and keep it from redrawing itself after what is printed next."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        if not getattr(bar, "disable", True):
            with contextlib.suppress(Exception):
                bar.fp.write("\n")
                bar.fp.flush()
            bar.disable = True


def override_args(argv: list[str]) -> list[str]:
    """The Hydra overrides among command-line arguments (flags and their values removed)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _FLAGS_WITH_VALUE and arg not in ("--info", "-i")
            continue
        out.append(arg)
    return out


def _group_options(config_path: str, group: str) -> list[str]:
    folder = Path(config_path) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _explain(exc: Exception, config_path: str, base_cfg: Any) -> str:
    """One line for a Hydra composition error."""
    from hydra.errors import MissingConfigException

    text = str(exc)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        missing = exc.missing_cfg_file
        group, _, name = missing.rpartition("/")
        options = list(exc.options or []) or _group_options(config_path, group)
        if group:
            return f"unknown {group} '{name}'; valid: {', '.join(options) or '(none)'}"
    match = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in struct", text
    )
    if match or "not in struct" in text:
        key = match.group(1) if match else "?"
        parent, _, leaf = key.rpartition(".")
        node = base_cfg
        if parent and base_cfg is not None:
            from omegaconf import OmegaConf

            node = OmegaConf.select(base_cfg, parent)
        valid = sorted(k for k in node.keys()) if hasattr(node, "keys") else []
        if (Path(config_path) / key.replace(".", "/")).is_dir():
            return (f"unknown option '{key}'; valid: "
                    f"{', '.join(_group_options(config_path, key.replace('.', '/')))}")
        where = f" under '{parent}'" if parent else ""
        return f"unknown key '{key}'{where}; valid keys: {', '.join(valid)} " \
               f"(use +{key}=... to add a new key)"
    match = re.search(r"In '([^']+)': Could not find '([^']+)'", text)
    if match:
        group, _, name = match.group(2).rpartition("/")
        return f"unknown {group} '{name}'; valid: {', '.join(_group_options(config_path, group))}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first


def _default_groups(config_name: str) -> set[str]:
    """The config groups named in the defaults list of ``conf/<config_name>.yaml``."""
    from omegaconf import OmegaConf

    groups = set()
    for entry in OmegaConf.load(Path(config_dir()) / f"{config_name}.yaml").get("defaults", []):
        if hasattr(entry, "keys"):
            groups.update(str(k).removeprefix("optional ").removeprefix("override ")
                          for k in entry.keys())
    return groups


def normalize_group_overrides(config_name: str, argv: list[str]) -> list[str]:
    """``group=option`` for a group of ``conf/`` that the defaults list does not name (such as
    ``hparams_search``) becomes ``+group=option``, and ``+group=option`` for one it names
    becomes ``group=option``: either spelling works. A nested group (``model/prior``) is
    chosen by its parent config's defaults list, so it is left as written."""
    listed, root = _default_groups(config_name), Path(config_dir())
    out = []
    for arg in argv:
        key, eq, _ = arg.partition("=")
        name = key.lstrip("+")
        if eq and not arg.startswith(("-", "~", "++")) and not name.startswith("hydra") \
                and name and "/" not in name and (root / name).is_dir():
            arg = (arg.lstrip("+") if name in listed else f"+{arg.lstrip('+')}")
        out.append(arg)
    return out


def check_overrides(config_name: str, argv: list[str]) -> None:
    """Compose the config for every value of every override; fail with one line on error."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = override_args(argv)
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as exc:
        text = " ".join(str(exc).split())
        fail(f"malformed override: {text[:300]}")
    path = config_dir()
    base_values = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [o for o in parsed if o.is_sweep_override()]
    first = {id(o): _first_value(o) for o in sweeps}
    combos = [base_values + [first[id(o)] for o in sweeps]]
    for o in sweeps:
        for value in _sweep_values(o):
            combos.append(base_values + [first[id(x)] if x is not o else value for x in sweeps])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=path, version_base="1.3"):
        try:
            base_cfg = compose(config_name=config_name)
        except Exception:
            base_cfg = None
        for combo in combos:
            try:
                compose(config_name=config_name, overrides=combo)
            except (HydraException, OmegaConfBaseException, ValueError) as exc:
                fail(_explain(exc, path, base_cfg))
    GlobalHydra.instance().clear()


def _sweep_values(override: Any) -> list[str]:
    key = override.get_key_element()
    try:
        values = list(override.sweep_string_iterator())
    except Exception:  # range/interval sweeps (Optuna) are checked by their sweeper
        return []
    return [f"{key}={v}" for v in values]


def _first_value(override: Any) -> str:
    values = _sweep_values(override)
    return values[0] if values else override.get_key_element() + "=null"


#: Checkpoints this process has read and found valid (resolved paths).
_READ: set[str] = set()


def already_read(path: str | Path) -> bool:
    """True when :func:`latest_checkpoint` has already read and checked ``path``."""
    return str(Path(path).resolve()) in _READ


def latest_checkpoint(folder: Path) -> Path:
    """The newest readable checkpoint in ``folder`` (``last.ckpt``, then ``iter_*.ckpt`` from
    the highest iteration down); an unreadable one is reported and skipped."""
    from ganlab.core.checkpoints import load_checkpoint

    kept = sorted(folder.glob("iter_*.ckpt"), key=lambda p: int(p.stem.split("_")[1]),
                  reverse=True)
    for path in [folder / "last.ckpt", *kept]:
        if not path.is_file():
            continue
        try:
            load_checkpoint(path)
        except GanlabError as exc:
            print(f"ganlab: warning: {exc}; trying an older checkpoint", file=sys.stderr)
            continue
        _READ.add(str(path.resolve()))
        return path
    fail(f"no readable checkpoint in {folder.resolve()}")
    raise AssertionError  # unreachable


def expand_resume(argv: list[str]) -> list[str]:
    """``resume=<run dir>`` → the run's own overrides, its directory and its latest checkpoint,
    followed by the other arguments (which may change e.g. ``train.iterations``)."""
    resume = [a for a in argv if a.startswith("resume=")]
    if not resume:
        return argv
    run_dir = Path(resume[-1].split("=", 1)[1]).expanduser()
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        fail(f"resume: {run_dir.resolve()} is not a ganlab run directory "
             "(no .hydra/overrides.yaml)")
    from omegaconf import OmegaConf

    ckpt = latest_checkpoint(run_dir / "checkpoints")
    _remember_run(run_dir)
    merged: dict[str, str] = {}  # by key: a new value replaces the run's own
    for arg in [*map(str, OmegaConf.load(overrides_file)), *argv]:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key not in ("hydra.run.dir", "ckpt_path", "resume"):
            merged.pop(key, None)
            merged[key] = arg
    flags = [a for a in merged.values() if a.startswith("-")]
    overrides = [a for a in merged.values() if not a.startswith("-")]
    run_dir_arg = f"hydra.run.dir={run_dir.resolve()}"
    return [*flags, *overrides, run_dir_arg, f"ckpt_path={ckpt}"]


#: Hydra settings a data-parallel child rank must not inherit from its parent's command.
_PARENT_ONLY = ("hydra.mode", "hydra.sweep", "hydra.run.", "hydra.job.", "hydra.output_subdir",
                "hydra/sweeper", "hydra/launcher", "hydra.sweeper", "hydra.launcher")
#: Environment variables Lightning's DDP launcher sets in the process that starts the ranks.
_LAUNCH_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextlib.contextmanager
def ranks_in_this_job() -> Iterator[None]:
    """Around ``trainer.fit``: the other ranks that Lightning's DDP launcher starts (it re-runs
    this command with ``hydra.run.dir`` set to Hydra's ``run.dir``) run exactly this job, in its
    directory. Without this, a multirun's child would run the whole sweep again, and every
    child would make a directory of its own from the ``${now:...}`` pattern. Afterwards the
    process group and the launcher's environment are cleared, so the next job of a multirun
    starts its own ranks."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    saved_argv, saved_env = list(sys.argv), {k: os.environ.get(k) for k in _LAUNCH_ENV}
    if HydraConfig.initialized() and "LOCAL_RANK" not in os.environ:
        hydra_cfg = HydraConfig.get()
        kept = [o for o in hydra_cfg.overrides.hydra if not o.startswith(_PARENT_ONLY)]
        sys.argv[1:] = [*kept, *hydra_cfg.overrides.task]
        with read_write(hydra_cfg), open_dict(hydra_cfg):
            hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv[:] = saved_argv
        if saved_env["LOCAL_RANK"] is None:  # this process launched the ranks
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


#: A resumed run's ``.hydra/*.yaml`` and checkpoint stamps as they were before Hydra ran.
_RESUMED: dict[str, Any] = {}


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*"))
            if p.is_file()} if folder.is_dir() else {}


def _remember_run(run_dir: Path) -> None:
    hydra_dir = run_dir / ".hydra"
    _RESUMED.update(run_dir=run_dir, checkpoints=_stamps(run_dir / "checkpoints"),
                    files={p.name: p.read_bytes() for p in hydra_dir.glob("*.yaml")})


def _restore_resumed_run() -> None:
    """A resume that failed before writing a checkpoint leaves its run as it was: Hydra has
    already replaced the run's ``.hydra/`` files with the failed command's; put them back, so
    the next ``resume=`` uses the run's own settings again."""
    if not _RESUMED:
        return
    run_dir: Path = _RESUMED["run_dir"]
    if _stamps(run_dir / "checkpoints") != _RESUMED["checkpoints"]:
        return  # training went on: the new settings are the run's now
    for name, data in _RESUMED["files"].items():
        (run_dir / ".hydra" / name).write_bytes(data)


def entry_point(config_name: str) -> Callable[[Callable[..., Any]], Callable[[], None]]:
    """Wrap a Hydra task function into a console-script ``main`` with one-line errors."""

    def wrap(task: Callable[..., Any]) -> Callable[[], None]:
        import hydra

        hydra_main = hydra.main(config_path=config_dir(), config_name=config_name,
                                version_base="1.3")(_reporting(task))

        @functools.wraps(task)
        def main() -> None:
            sys.argv[1:] = normalize_group_overrides(config_name, expand_resume(sys.argv[1:]))
            check_overrides(config_name, sys.argv[1:])
            # Hydra re-raises instead of printing its own report, so an unusable output
            # directory (made by Hydra before the task runs) gives one line too.
            os.environ.setdefault("HYDRA_FULL_ERROR", "1")
            from hydra.errors import HydraException

            try:
                hydra_main()
            except OSError as exc:
                _restore_resumed_run()
                fail(_os_error(exc))
            except (HydraException, ValueError) as exc:
                _restore_resumed_run()
                if _TASK_STARTED and not isinstance(exc, HydraException):
                    raise  # a bug in the run, not bad input: keep the traceback
                # Hydra's usage errors, e.g. a sweep without --multirun.
                fail(" ".join(str(exc).split())[:300] or type(exc).__name__)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    _restore_resumed_run()
                raise
            except BaseException:
                _restore_resumed_run()
                raise

        return main

    return wrap


def _os_error(exc: OSError) -> str:
    """One line for a file-system error: which path, and why."""
    if exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


#: Set when Hydra hands over to the task (errors before it are usage errors).
_TASK_STARTED = False


def _reporting(task: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(task)
    def run(cfg: Any) -> Any:
        global _TASK_STARTED
        _TASK_STARTED = True
        from omegaconf import OmegaConf

        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            fail(f"missing value for {', '.join(missing)}: set it on the command line, "
                 f"e.g. {missing[0]}=...")
        _raise_on_log_write_errors()
        try:
            return task(cfg)
        except Interrupted as exc:
            _stop_interrupted(cfg, exc)
        except WriteFailed as exc:
            fail(f"{exc}; {_where_to_continue(cfg)}")
        except GanlabError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{_os_error(exc)}; {_where_to_continue(cfg)}")
        except KeyboardInterrupt:
            fail(f"interrupted; {_where_to_continue(cfg)}", code=130)
        except RuntimeError as exc:
            lost = _lost_peer(exc)
            if lost is None:
                raise
            fail(f"a data-parallel process was lost ({lost}); this process stopped; "
                 f"{_where_to_continue(cfg)}")

    return run


def _raise_on_log_write_errors() -> None:
    """A log file that cannot be written (a full disk) stops the run with one line, instead
    of the logging module's traceback on every record."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            def handle_error(record: logging.LogRecord,
                             handler: logging.FileHandler = handler) -> None:
                exc = sys.exc_info()[1]
                if isinstance(exc, OSError):
                    raise WriteFailed(handler.baseFilename, exc.strerror or str(exc)) from None
                logging.FileHandler.handleError(handler, record)

            handler.handleError = handle_error  # type: ignore[method-assign]


def _run_dirs(cfg: Any) -> tuple[Path | None, Path | None]:
    """The run directory and its checkpoint folder (None where the config has none)."""
    from omegaconf import OmegaConf

    found = []
    for key in ("paths.output_dir", "callbacks.checkpoint.dirpath"):
        try:
            value = OmegaConf.select(cfg, key)
        except Exception:  # an interpolation that cannot resolve here
            value = None
        found.append(Path(value) if value else None)
    return found[0], found[1]


def last_good_checkpoint(folder: Path | None) -> tuple[Path, int] | None:
    """The newest readable checkpoint in ``folder`` and its iteration, without printing."""
    from ganlab.core.checkpoints import checkpoint_iteration

    if folder is None or not folder.is_dir():
        return None
    kept = sorted(folder.glob("iter_*.ckpt"), key=lambda p: int(p.stem.split("_")[1]),
                  reverse=True)
    for path in [folder / "last.ckpt", *kept]:
        iteration = checkpoint_iteration(path) if path.is_file() else None
        if iteration is not None:
            return path, iteration
    return None


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in ``run_dir``."""
    import shlex

    return f"ganlab-train resume={shlex.quote(str(run_dir))}"


def _where_to_continue(cfg: Any) -> str:
    """``the last good checkpoint is <file> (iteration N); continue with: <command>``, after
    removing the temporary files that a failed write left."""
    from ganlab.core.atomic import remove_temporaries

    run_dir, ckpt_dir = _run_dirs(cfg)
    folders = [d for d in (run_dir, ckpt_dir, run_dir and run_dir / "samples") if d is not None]
    remove_temporaries(*folders)
    good = last_good_checkpoint(ckpt_dir)
    if good is None:
        return "no checkpoint was written yet"
    path, iteration = good
    tail = f"; continue with: {resume_command(run_dir)}" if run_dir is not None else ""
    return f"the last good checkpoint is {path} (iteration {iteration}){tail}"


def _stop_interrupted(cfg: Any, exc: Interrupted) -> None:
    """One line for a run stopped by a signal, then exit 128 + the signal number."""
    import signal

    code = 128 + exc.signum
    if exc.rank != 0:
        sys.exit(code)
    name = signal.Signals(exc.signum).name
    run_dir, _ = _run_dirs(cfg)
    if exc.checkpoint is None:
        say(f"ganlab: stopped by {name} at iteration {exc.iteration} without saving; "
            f"{_where_to_continue(cfg)}")
    elif exc.requeued:
        say(f"ganlab: {name} at iteration {exc.iteration}: saved {exc.checkpoint} and "
            f"requeued the SLURM job, which continues in {run_dir} (by hand: "
            f"{resume_command(run_dir)})", logging.WARNING)
    else:
        say(f"ganlab: stopped by {name} at iteration {exc.iteration}; saved {exc.checkpoint} "
            f"(iteration {exc.iteration}); continue with: {resume_command(run_dir)}",
            logging.WARNING)
    sys.exit(code)


def _lost_peer(exc: RuntimeError) -> str | None:
    """What a failed collective says when another rank died or hung (None: not that)."""
    text = " ".join(str(exc).split())
    try:
        import torch.distributed as dist

        is_dist = isinstance(exc, getattr(dist, "DistError", ()))
    except ImportError:
        is_dist = False
    if not (is_dist or re.search(r"gloo|nccl|ProcessGroup", text, re.IGNORECASE)):
        return None
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo's [source.cc:line] prefix
    return text.split(". ")[0][:160]
