"""`advlm` command line: one module per subcommand; bad input exits 2 with a one-line error, a run that fails
(diverges, or its disk fills up) exits 1 with one, Ctrl-C exits 130 and SIGTERM (a scheduler's preemption) 143,
both after keeping the last complete checkpoint and saying how to resume."""

from __future__ import annotations

import argparse
import logging
import sys

from advlm.errors import AdvlmError, RunFailed

SUBCOMMANDS = ("train", "eval", "robustness", "attack", "bench", "pretrain", "list", "report")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other bad input (`--help` still prints the full usage)."""

    def error(self, message: str):
        self.exit(2, f"advlm: error: {message} (see `{self.prog} --help`)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    from advlm._version import __version__
    from advlm.cli import attack as attack_cmd
    from advlm.cli import bench as bench_cmd
    from advlm.cli import evaluate as eval_cmd
    from advlm.cli import list_methods as list_cmd
    from advlm.cli import pretrain as pretrain_cmd
    from advlm.cli import report as report_cmd
    from advlm.cli import robustness as robustness_cmd
    from advlm.cli import train as train_cmd

    parser = _Parser(prog="advlm", description="Adversarial fine-tuning of language models.")
    parser.add_argument("--version", action="version", version=f"advlm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    train_cmd.add_parser(sub, argv)
    eval_cmd.add_parser(sub)
    robustness_cmd.add_parser(sub)
    attack_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    pretrain_cmd.add_parser(sub)
    list_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C's KeyboardInterrupt is: the same clean-up follows."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import signal
    import threading

    from advlm.host_memory import keep_freed_memory

    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    keep_freed_memory()  # a process-wide malloc setting: the program's to make, not the library's
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser(argv).parse_args(argv)  # --help ends here, before torch or transformers is imported
        if args.command != "list":
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        return int(args.func(args) or 0)
    except AdvlmError as e:
        print(f"advlm: error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"advlm: failed: {e}", file=sys.stderr)
        return 1
    except Terminated:
        print("advlm: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("advlm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `advlm list | head`: the reader left; stop quietly, as other command-line tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's last flush goes nowhere
        return 0
    except OSError as e:  # what no check before the work could foresee: a full disk, a folder made read-only
        print(f"advlm: failed: {os_error_line(e)}", file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
        _leave_process_group()


def os_error_line(e: OSError) -> str:
    """An operating-system error as one line: what failed, on which file, and what to do."""
    import errno

    where = f" ({e.filename})" if e.filename else ""
    fix = {
        errno.ENOSPC: "free some space and run again (a training run continues with --resume)",
        errno.EACCES: "check the permissions of that path",
        errno.EPERM: "check the permissions of that path",
        errno.EROFS: "write to a folder on a writable file system",
        errno.ENAMETOOLONG: "choose a shorter name",
    }.get(e.errno, "check the path and run again")
    return f"{e.strerror or e}{where}; {fix}"


def _leave_process_group() -> None:
    """Under torchrun, leave the process group before the interpreter exits: gloo's worker threads torn down
    during finalization can abort a rank after a finished run ("terminate called without an active exception")."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
