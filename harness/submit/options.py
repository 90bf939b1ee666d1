"""What `harness submit` takes, and the two ways a submission stops before it records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harness.tracks import Track

from harness.config import doc
from harness.errors import HarnessError, UsageError


class SubsetInvalid(HarnessError):
    """The subset broke the track's rules; nothing was trained."""


class StageFailed(HarnessError):
    """A stage raised; earlier stages are intact and a re-run resumes."""


@dataclass(frozen=True, kw_only=True)
class SubmitOptions:
    """Everything `harness submit` takes (the track and the subset decide the entry; the rest is how to run)."""

    track: str = doc("Track name.")
    subset: str = doc("Subset file, directory or glob (local or fsspec URL).")
    name: str = doc("Display name of the entry ('' = the subset's file name).", default="")
    authors: tuple[str, ...] = doc("Authors shown on the leaderboard.", default=())
    description: str = doc("What the curation does.", default="")
    link: str = doc("URL of the curation code or paper.", default="")
    run_dir: str = doc("Root of run folders: <run_dir>/<track>/<entry-id>/<stage>/.", default="runs")
    results: str = doc("Results store URL (local folder or s3://).", default="results")
    leaderboard: str | None = doc("Rebuild the static leaderboard into this folder after recording.", default=None)
    trainer: Literal["native", "open_lm"] = doc("Training backend.", default="native")
    nproc: int = doc("Training processes on this node (torchrun when > 1).", default=1)
    launcher: Literal["local", "slurm"] = doc(
        "Where the stages after validation run: here, or in a Slurm job (harness.submit.slurm).", default="local"
    )
    slurm_submit: bool = doc("With launcher slurm: sbatch the job script (False: write it only).", default=True)
    slurm_wait: bool = doc("With launcher slurm: follow the job until it ends.", default=False)
    workers: int = doc("Processes for tokenization.", default=1)
    device: str | None = doc("Training/evaluation device (default: cuda when available, else cpu).", default=None)
    skip_evaluate: bool = doc("Stop after training (no evaluation and no record).", default=False)
    checkpoint_scores: bool = doc(
        "Also evaluate every earlier saved checkpoint; the record keeps each run's score trajectory.", default=False
    )
    replicates: int = doc("Train with the track's first K seeds; the record keeps each and their spread.", default=1)
    seeds: tuple[int, ...] = doc(
        "Replicate seeds in order, the track's official seed first (sweeps pass their seed factor); default: the "
        "track's first `replicates` [recipe] seeds.",
        default=(),
    )

    def __post_init__(self) -> None:
        from harness.fields import submission_problems
        from harness.tracks import get_track

        get_track(self.track)  # an unknown track is a usage error before anything is shown or done
        problems = submission_problems(
            name=self.display_name, authors=self.authors, description=self.description, link=self.link,
            name_required=True,
        )  # fmt: skip
        if problems:  # refused before any work starts, not after training
            raise UsageError("the submission's fields are not acceptable: " + "; ".join(problems))
        from harness.io.files import require_writable

        # Each output is written only at its stage (the record after evaluation): checked now, before any work.
        for folder, option in (
            (self.run_dir, "--run-dir"),
            (self.results, "--results"),
            (self.leaderboard, "--leaderboard"),
        ):
            if folder:
                require_writable(folder, option)

    def replicate_seeds(self, track: Track) -> tuple[int, ...]:
        """The seeds this submission trains with: `seeds`, else the track's first `replicates`; a clear error for
        a wrong count, a repeated seed, or a first seed that is not the track's own (the entry's own run)."""
        if not self.seeds:
            return seeds_for(track, self.replicates)
        if self.seeds[0] != track.recipe.seed or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise UsageError(
                f"replicate seeds {list(self.seeds)}: give distinct non-negative seeds starting with track "
                f"{track.name}'s own seed {track.recipe.seed} (the entry's own run); replicates follow it"
            )
        if self.replicates not in (1, len(self.seeds)):
            raise UsageError(f"--replicates {self.replicates} disagrees with the {len(self.seeds)} seeds given")
        return self.seeds

    @property
    def display_name(self) -> str:
        """The entry's name on the leaderboard: --name, else the subset's file name."""
        return self.name or Path(self.subset.rstrip("/")).name


def seeds_for(track: Track, k: int) -> tuple[int, ...]:
    """The first `k` replicate seeds of the track; a clear error when it names fewer."""
    seeds = track.recipe.replicate_seeds
    if k < 1:
        raise UsageError(f"--replicates must be at least 1, got {k}")
    if k > len(seeds):
        raise UsageError(
            f"track {track.name} names {len(seeds)} replicate seed(s) ({', '.join(map(str, seeds))}) in "
            f"[recipe] seeds; --replicates {k} needs {k}. Ask for at most {len(seeds)}."
        )
    return seeds[:k]
