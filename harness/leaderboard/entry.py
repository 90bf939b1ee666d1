"""One entry's page of the leaderboard (`entries/<entry_id>.html`) and the site's copy of its record: the
submission, aggregates and tasks, training, the track it ran on and the provenance."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.errors import HarnessError
from harness.leaderboard.charts import loss_curve_svg
from harness.leaderboard.columns import human
from harness.leaderboard.markup import e, num, pairs, table, template
from harness.leaderboard.paths import site_path
from harness.leaderboard.uncertainty import contamination_html, replicates_html
from harness.records import Record, Stored

if TYPE_CHECKING:
    from harness.tracks import Track


def _copy_record(record: Record, source: Stored | None, dest: Path) -> None:
    """The site's copy of a record: the stored bytes as read and validated (serializing 600 curve numbers again was
    half the time of an entry), written to a new file. Never a link to the store's file: a hard link shares the
    file, so a write or a chmod inside the site would change the store (and a link to a file outside the store
    would publish that file). The bytes are already in memory, so a plain write costs what a copy-on-write clone
    would (creating the file is the cost) and is exactly what the entry page shows."""
    dest.write_bytes(record.to_json(compact=True).encode() if source is None else source.data)


def write_entry(record: Record, source: Stored | None, root: Path, title: str) -> None:
    track = record.track.name
    _copy_record(record, source, site_path(root, "records", track, record.entry_id, suffix=".json"))
    sub = record.submission
    link = f'<a href="{e(sub.link)}" rel="nofollow noopener">{e(sub.link)}</a>' if sub.link else ""
    page = template("entry.html").substitute(
        title=e(title), harness_version=e(__version__), name=e(sub.name), track=e(track), track_anchor=e(track),
        track_path=e(track), entry_id=e(record.entry_id), authors=e(", ".join(sub.authors)),
        description=e(sub.description), contact=f"Contact: {e(sub.contact)}" if sub.contact else "", link=link,
        created_at=e(record.created_at), aggregates=_aggregates_html(record) + replicates_html(record),
        tasks=_tasks_html(record) + contamination_html(record),
        training=_training_html(record), loss_curve=loss_curve_svg(record.training.curve),
        curve_points=len(record.training.curve), track_info=_track_html(record),
        provenance=_provenance_html(record, source.checked if source else "self-reported"),
    )  # fmt: skip
    site_path(root, "entries", record.entry_id, suffix=".html").write_text(page, encoding="utf-8")


def _aggregates_html(record: Record) -> str:
    rows = [
        [
            name + (" (primary)" if name == record.evaluation.primary_aggregate else ""),
            num(a.value), a.version, a.n_tasks, "higher" if a.higher_is_better else "lower",
            (", ".join(a.missing) + (f" ({a.reason})" if a.reason else "")) or "none",
        ]
        for name, a in sorted(record.evaluation.aggregates.items())
    ]  # fmt: skip
    return table(["aggregate", "value", "version", "tasks", "better", "missing tasks"], rows, "aggregates")


def _tasks_html(record: Record) -> str:
    rows = [
        [
            name, t.metric, num(t.value), num(t.baseline), num(t.centered),
            num(t.stderr.get(t.metric)), "–" if t.shots is None else t.shots,
            "–" if t.n_samples is None else t.n_samples, "higher" if t.higher_is_better else "lower",
        ]
        for name, t in sorted(record.evaluation.tasks.items())
    ]  # fmt: skip
    headers = ["task", "metric", "raw", "baseline", "centered", "stderr", "shots", "examples", "better"]
    return table(headers, rows, "tasks")


def _training_html(record: Record) -> str:
    t = record.training
    return pairs([
        ("trainer", t.trainer), ("tokens seen", f"{t.tokens_seen:,} ({human(t.tokens_seen)})"),
        ("passes over the data", f"{t.passes:.3f}"), ("optimizer steps", f"{t.steps:,}"),
        ("distinct tokens / passes over them", f"{record.subset.unique_tokens:,} / {t.unique_passes:.3f}"),
        ("held-out loss / next-token accuracy / perplexity", _heldout(record)),
        ("final loss", f"{t.final_loss:.4f}"), ("wall time", f"{t.wall_time_s:,.1f} s"),
    ])  # fmt: skip


def _heldout(record: Record) -> str:
    lm = record.evaluation.heldout_lm
    return "–" if not lm else f"{lm['loss']:.4f} / {lm['accuracy']:.4f} / {lm['perplexity']:.2f}"


@cache
def _shipped_track(name: str) -> tuple[Track, str] | None:
    """The shipped track and its hash (hashing it per entry page would cost a second per 1,000 entries); a record
    made when seeds were tracks (`nano-seed125`) shows the shipped track at that seed."""
    from harness.tracks import get_track, legacy_seeded

    try:
        track = get_track(name)
    except HarnessError:
        track = legacy_seeded(name)
    return None if track is None else (track, track.sha256)


def _track_html(record: Record) -> str:
    ref = record.track
    return _track_block(ref.name, ref.version, ref.sha256)


@cache
def _track_block(name: str, version: int, sha256_of_record: str) -> str:
    """The track section of an entry page: the same for every entry of a track version (rendered once)."""
    rows: list[tuple[str, Any]] = [("track", name), ("version", version), ("track sha256", sha256_of_record)]
    shipped = _shipped_track(name)
    if shipped is None:
        return pairs(rows) + '<p class="muted">This track is not shipped with this harness; recipe unknown.</p>'
    track, sha256 = shipped
    note = ""
    if sha256 != sha256_of_record:
        note = (
            f'<p class="warn">The shipped track (version {e(track.version)}, sha256 {e(sha256[:12])}…) '
            "differs from the one this entry ran on; the recipe below is the shipped one.</p>"
        )
    shape = track.model
    rows += [
        ("model", f"d={shape.d_model}, layers={shape.n_layers}, heads={shape.n_heads}, vocab={shape.vocab_size}, "
                  f"context={shape.context}, {track.n_params:,} parameters"),
        ("budget", f"{track.tokens:,} tokens, {track.steps:,} steps"),
        ("pool / suite", f"{track.pool} / {track.suite}"),
        ("rules", f"{track.rules.kind}, text edits {'allowed' if track.rules.text_edits else 'not allowed'}"),
    ]  # fmt: skip
    rows += [
        (f"recipe.{k}", " ".join(map(str, v)) or "none" if isinstance(v, tuple) else v)
        for k, v in vars(track.recipe).items()
    ]
    return note + pairs(rows)


def _provenance_html(record: Record, checked: str) -> str:
    v, hw = record.versions, record.hardware
    rows: list[tuple[str, Any]] = [
        ("entry id", record.entry_id), ("schema version", record.schema_version), ("pool", record.pool),
        ("subset sha256", record.subset.sha256),
        ("subset", f"{record.subset.documents:,} documents ({record.subset.unique_documents:,} distinct), "
                   f"{record.subset.tokens:,} tokens, {record.subset.bytes:,} bytes"),
        ("tokenizer sha256", record.tokenizer_sha256),
        ("suite", f"{record.evaluation.suite} (version {record.evaluation.suite_version})"),
        ("harness", f"{v.harness} (commit {v.git_commit or 'unknown'})"),
        ("python / torch / lm-eval", f"{v.python or '–'} / {v.torch or '–'} / {v.lm_eval or '–'}"),
        ("open_lm", v.open_lm or "not used"),
        ("hardware", f"{hw.count} × {hw.accelerator} on {hw.nodes} node(s)" + (f"; CPU {hw.cpu}" if hw.cpu else "")),
        ("seeds", ", ".join(f"{k}={s}" for k, s in sorted(record.seeds.items())) or "–"),
        ("recorded", record.created_at),
        ("checked", checked + ("" if checked.startswith("verified") else " (no verified bundle in the store)")),
    ]  # fmt: skip
    return pairs(rows)
