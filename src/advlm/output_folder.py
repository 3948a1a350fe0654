"""An output folder that belongs to one run at a time and whose earlier contents are never lost by surprise.

`with OutputFolder(path, "fine-tuning", overwrite=..., resume=...):` around a run, after its input is checked
and before anything is written:

- the folder (and any missing parent) is created, and a lock is taken on it (`flock` on `.advlm.lock`, which
  the system releases when the process dies, even by SIGKILL): a second run into it is refused, naming the
  first one's process id;
- that the folder is writable is checked now, not after the training;
- a folder that already holds files is refused, unless `overwrite` (its contents are removed first) or
  `resume` (it must hold a run of the same kind; the caller checks its checkpoint); `overwrite` and `resume`
  together are refused (the one would delete what the other continues);
- `overwrite` removes only a run of the same kind: a folder that holds the other kind of run (pre-training vs
  fine-tuning) or files of no advlm run is refused, and so is one that holds the run's own inputs (its data
  files, its model folder: `inputs`), whatever the flags;
- if the run fails, only what it created is removed: the entries that were not there when it took the folder,
  except complete checkpoints (a full disk, a crash or an interrupt must leave the last one to resume from;
  a run that diverged keeps none: resumed with the same settings it would diverge again), and the folders it
  created if they are then empty. What was there before, or what another run finished, is never
  touched.

Only the main process of a multi-process run (RANK 0 or unset) takes the folder; the others write nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from advlm.errors import AdvlmError, Diverged

LOCK_FILE = ".advlm.lock"
WRITE_TEST = ".advlm-write-test-"
FINE_TUNING, PRE_TRAINING = "fine-tuning", "pre-training"
# the files that say which kind of run a folder holds, and the names of each kind's checkpoints
MARKERS = {FINE_TUNING: ("metrics.json", "config.yaml"), PRE_TRAINING: ("pretrain_metrics.json", "checkpoint.pt")}
CHECKPOINT_PREFIX = {FINE_TUNING: "checkpoint-", PRE_TRAINING: "checkpoint.pt"}
# written last into a fine-tuning checkpoint folder: the folder is complete (advlm.checkpoints)
COMPLETE_FILE = "advlm_checkpoint.json"


def run_kind(path: Path) -> str | None:
    """The kind of run a folder holds (by its marker files or checkpoints), or None."""
    for kind, markers in MARKERS.items():
        if any((path / m).exists() for m in markers) or any(path.glob(CHECKPOINT_PREFIX[kind] + "*")):
            return kind
    return None


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class OutputFolder:
    """The run's claim on its output folder: lock, checks, and the clean-up of a failed run (module doc)."""

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        overwrite: bool = False,
        resume: bool = False,
        inputs: Mapping[str, str | os.PathLike | None] | None = None,
    ):
        """`inputs`: what the run reads, by the flag that named it (`{"--train-file": path}`); none of it may lie
        in the folder."""
        if overwrite and resume:
            raise AdvlmError(
                "--overwrite and --resume together: --overwrite would delete the checkpoints --resume continues "
                "from; pass --resume to continue the run, or --overwrite alone to start afresh"
            )
        self.path, self.kind, self.overwrite, self.resume = Path(path), kind, overwrite, resume
        self.inputs = {flag: Path(p) for flag, p in (inputs or {}).items() if p is not None}
        self._lock_fd: int | None = None
        self._before: set[str] = set()
        self._created: list[Path] = []

    def __enter__(self) -> OutputFolder:
        if is_main_process():
            self.claim()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._lock_fd is None:
            return
        try:
            if exc_type is not None:
                self.clean_up(keep_checkpoints=not issubclass(exc_type, Diverged))
        finally:
            self.release()

    def claim(self) -> None:
        try:
            exists = self.path.exists()
            self._check_inputs()
        except OSError as e:  # a name too long, a link loop
            raise AdvlmError(f"--output-dir {self.path}: {e.strerror}; choose another folder") from None
        if exists and not self.path.is_dir():
            raise AdvlmError(f"--output-dir {self.path} is a file, not a folder; choose a folder")
        if exists:
            self._refuse_contents()  # before the lock file touches a folder that is refused anyway
        self._make_folders()
        self._lock()
        try:
            self._check_writable()
            self._check_contents()
        except BaseException:
            self.release()
            self._remove_created_folders()
            raise
        self._before = self._entries()

    def _make_folders(self) -> None:
        missing = [p for p in [self.path, *self.path.parents] if not p.exists()]
        self._created = missing  # innermost first
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._remove_created_folders()
            raise AdvlmError(f"cannot create --output-dir {self.path}: {e.strerror}; choose another folder") from None

    def _lock(self) -> None:
        lock = self.path / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            self._remove_created_folders()
            raise AdvlmError(f"cannot write to --output-dir {self.path}: {e.strerror}; choose another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AdvlmError(
                f"another advlm run (process {owner}) is writing to {self.path}; wait for it to finish or choose "
                "another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _check_writable(self) -> None:
        probe = self.path / f"{WRITE_TEST}{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise AdvlmError(f"cannot write to --output-dir {self.path}: {e.strerror}; choose another folder") from None

    def _check_inputs(self) -> None:
        """None of the run's inputs lies in the folder: a run would write over them, `overwrite` delete them."""
        folder = self.path.resolve()
        for flag, given in self.inputs.items():
            path = given.resolve()
            if path == folder or folder in path.parents:
                what = "is" if path == folder else "holds"
                raise AdvlmError(
                    f"--output-dir {self.path} {what} the run's own {flag} {given}; the run would write over it "
                    "(and --overwrite delete it): choose another --output-dir"
                )

    def _refuse_contents(self) -> None:
        """Refuse what the folder holds, as the flags stand (module doc); changes nothing."""
        entries = self._entries()
        if not entries:
            return
        held = run_kind(self.path)
        if held is not None and held != self.kind:
            raise AdvlmError(
                f"--output-dir {self.path} holds a {held} run; a {self.kind} run will neither write into it nor "
                "replace it (not even with --overwrite): choose another folder"
            )
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        if self.overwrite:
            if held is None:
                raise AdvlmError(
                    f"--output-dir {self.path} holds files of no advlm run ({shown}); --overwrite replaces only a "
                    f"{self.kind} run's folder: choose another folder, or empty this one yourself"
                )
            return
        if self.resume:
            return  # the caller checks that there is a checkpoint to resume from
        resumable = held == self.kind and any(self.path.glob(CHECKPOINT_PREFIX[self.kind] + "*"))
        hint = ", --resume to continue the run in it" if resumable else ""
        raise AdvlmError(
            f"--output-dir {self.path} is not empty ({shown}); pass --overwrite to replace its contents{hint}, or "
            "choose another folder"
        )

    def _check_contents(self) -> None:
        """Under the lock: refuse as `_refuse_contents` does, else empty the folder for `overwrite`."""
        self._refuse_contents()
        if self.overwrite:
            for name in self._entries():
                _remove(self.path / name)

    def _entries(self) -> set[str]:
        return {p.name for p in self.path.iterdir() if p.name != LOCK_FILE and not p.name.startswith(WRITE_TEST)}

    def clean_up(self, keep_checkpoints: bool = True) -> None:
        """Remove what this run created but its complete checkpoints (module doc); a run that diverged keeps
        none (`Diverged`)."""
        for name in self._entries() - self._before:
            if not (keep_checkpoints and self._is_complete_checkpoint(name)):
                _remove(self.path / name)

    def _is_complete_checkpoint(self, name: str) -> bool:
        if self.kind == PRE_TRAINING:
            return name == CHECKPOINT_PREFIX[PRE_TRAINING]  # replaced atomically: never torn
        return name.startswith(CHECKPOINT_PREFIX[FINE_TUNING]) and (self.path / name / COMPLETE_FILE).is_file()

    def release(self) -> None:
        if self._lock_fd is None:
            return
        (self.path / LOCK_FILE).unlink(missing_ok=True)  # before the unlock: a waiting run then makes its own
        os.close(self._lock_fd)
        self._lock_fd = None
        self._remove_created_folders()

    def _remove_created_folders(self) -> None:
        """The folders this run created, innermost first, as long as they are empty."""
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENAMETOOLONG):
                    continue  # never made (the mkdir failed there): its parents may have been
                return  # not empty: neither are its parents


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
