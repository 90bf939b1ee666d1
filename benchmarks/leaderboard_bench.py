"""Build the leaderboard site from 10,000 records: wall time of loading and building, the index page's size,
and (with Chromium present) how responsive the index is: load, a sort click, a filter keystroke.

    python benchmarks/leaderboard_bench.py [--records 10000] [--dir DIR] [--keep DIR] [--no-browser]

Records are synthetic (harness.leaderboard.sample), split 70/30 over the debug and nano tracks, written to a
local results store first (not timed). Target: load, validate and build under 10 s on 2 cores, index responsive.
The store and the site go in a temporary folder under --dir (default: the current directory). The site is
20,000 files, so the file system matters: the bench prints what creating one file costs there. (On the
development sandbox /tmp is a monitored folder where that costs 1.1 ms, 15x the 0.07 ms of any other folder on
the same disk, which alone would add 20 s.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def make_store(root: Path, n: int) -> str:
    from rich.progress import track

    from harness.leaderboard.sample import synthetic_record
    from harness.records import ResultsStore

    store = ResultsStore(str(root / "results"))
    for i in track(range(n), description=f"writing {n} records"):
        store.add(synthetic_record("debug" if i % 10 < 7 else "nano", i))
    return store.url


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the build's worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def browser_timings(index: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(index.resolve().as_uri(), wait_until="load")
        loaded = time.perf_counter() - t0
        section = page.locator("#track-debug")
        times = {"load_s": loaded}
        for name, action in (
            ("sort_click_s", lambda: section.locator('th[data-key^="agg:heldout_bpb"] button').click()),
            ("filter_keystroke_s", lambda: section.locator("input.filter").press_sequentially("7")),
            ("next_page_s", lambda: section.locator("button.next").click()),
        ):
            t0 = time.perf_counter()
            action()
            section.locator("tbody tr").first.wait_for()
            times[name] = time.perf_counter() - t0
        # The script's own time for one sort of all rows, without the driver's round trip.
        times["sort_in_page_ms"] = page.evaluate(
            """() => { const b = document.querySelector('#track-debug th[data-key="passes"] button');
                       const t = performance.now(); b.click(); return performance.now() - t; }"""
        )
        browser.close()
    return times


def file_create_ms(folder: Path, n: int = 2000) -> float:
    """Wall milliseconds to create and write one 8 KiB file in `folder` (the site's pages are about that size)."""
    probe = Path(tempfile.mkdtemp(prefix="fs-probe-", dir=folder))
    try:
        t0 = time.perf_counter()
        for i in range(n):
            (probe / f"{i}.html").write_bytes(b"x" * 8192)
        return (time.perf_counter() - t0) / n * 1000
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("."), help="where the temporary store and site go")
    parser.add_argument("--keep", type=Path, help="keep the built site here")
    parser.add_argument("--no-browser", action="store_true", help="skip the responsiveness measurement")
    args = parser.parse_args()

    from harness.leaderboard.build import build_site
    from harness.records import ResultsStore

    tmp = Path(tempfile.mkdtemp(prefix=".lb-bench-", dir=args.dir)).resolve()
    try:
        url = make_store(tmp, args.records)
        t0, c0 = time.perf_counter(), cpu_seconds()
        records, problems, sources = ResultsStore(url).load()  # what `harness leaderboard build` does
        t_load, c_load = time.perf_counter() - t0, cpu_seconds() - c0
        assert len(records) == args.records and not problems
        out = args.keep or tmp / "site"
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = build_site(records, out, sources=sources)
        t_build, c_build = time.perf_counter() - t0, cpu_seconds() - c0
        print(f"machine:              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings are wall)")
        print(f"records:              {len(records)} ({summary.entries})")
        print(f"file system:          {file_create_ms(tmp):.2f} ms to create one 8 KiB file in {tmp.parent.resolve()}")
        print(f"load + validate:      {t_load:.2f} s wall, {c_load:.2f} s CPU (all processes)")
        print(f"build site:           {t_build:.2f} s wall, {c_build:.2f} s CPU (all processes)")
        print(f"total:                {t_load + t_build:.2f} s wall, {c_load + c_build:.2f} s CPU")
        print(f"index.html:           {summary.index_bytes / 1024:.0f} KiB")
        print(f"assets/data.js:       {(out / 'assets' / 'data.js').stat().st_size / 1024:.0f} KiB")
        print(f"whole site:           {size_of(out) / 2**20:.0f} MiB in {sum(1 for _ in out.rglob('*'))} files")
        if not args.no_browser and shutil.which("/usr/bin/chromium"):
            for key, value in browser_timings(out / "index.html").items():
                print(f"browser {key + ':':<21} {value:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
