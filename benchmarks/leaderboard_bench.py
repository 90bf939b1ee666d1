"""Build the leaderboard site from 10,000 records: wall time of loading and building, the index page's size,
and (with Chromium present) how responsive the index is: load, a sort click, a filter keystroke.

    python benchmarks/leaderboard_bench.py [--records 10000] [--keep DIR] [--no-browser]

Records are synthetic (harness.leaderboard.sample), split 70/30 over the debug and nano tracks, written to a
local results store first (not timed). Target: build under 10 s, index responsive.
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
        page.goto(index.as_uri(), wait_until="load")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="keep the built site here")
    parser.add_argument("--no-browser", action="store_true", help="skip the responsiveness measurement")
    args = parser.parse_args()

    from harness.leaderboard.build import build_site
    from harness.records import ResultsStore

    tmp = Path(tempfile.mkdtemp(prefix="lb-bench-"))
    try:
        url = make_store(tmp, args.records)
        t0, c0 = time.perf_counter(), cpu_seconds()
        records, problems = ResultsStore(url).list()
        t_load, c_load = time.perf_counter() - t0, cpu_seconds() - c0
        assert len(records) == args.records and not problems
        out = args.keep or tmp / "site"
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = build_site(records, out)
        t_build, c_build = time.perf_counter() - t0, cpu_seconds() - c0
        print(f"machine:              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings are wall)")
        print(f"records:              {len(records)} ({summary.entries})")
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
