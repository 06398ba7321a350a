"""The HTML/PNG report: figures, a self-contained page, and the page as headless Chromium shows it."""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import struct
import subprocess
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.helpers import recording_table
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.present.report_html import (
    bandpass_for_display,
    build_report,
    densest_window,
    render_html,
    time_of_day_cells,
    write_report,
)
from toetwitch.pipeline.store.journal import Journal

TODAY = date(2026, 3, 20)
#: twitches per day in the test journal (fasciculations), days before TODAY -> count
DAY_COUNTS = {5: 12, 4: 0, 3: 27, 2: 31, 0: 44}
ASSESSMENT = {
    "escalation": {"level": "routine", "reasons": [
        {"rule": "R1", "message": "Twitching has been recorded on most days for over two weeks.",
         "source": "NICE NG127"}]},
    "causes": [{"cause": "caffeine_stimulants", "probability": 0.52, "why": ["400 mg caffeine a day"]},
               {"cause": "stress_anxiety_sleep", "probability": 0.31, "why": ["sleeps 5 h"]},
               {"cause": "benign_fasciculation", "probability": 0.17, "why": []}],
    "advice": ["Cut caffeine down gradually over a week.", "Keep a regular bedtime."],
    "unanswered_red_flags": ["Is there any weakness?"],
    "disclaimer": "toetwitch informs; it does not diagnose. See a doctor if you are worried.",
}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG header; fails the test if it is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _result(times_s, start_time):
    n = len(times_s)
    events = pd.DataFrame({"time_s": np.asarray(times_s, float), "source": "emg", "type": "fasciculation",
                           "peak_to_peak_uv": 90.0})
    episodes = pd.DataFrame({"episode": [1], "start_s": [times_s[0]], "end_s": [times_s[-1]],
                             "twitches": [n], "duration_s": [times_s[-1] - times_s[0]],
                             "rate_per_min": [6.0], "median_peak_to_peak_uv": [90.0],
                             "max_peak_to_peak_uv": [120.0]}) if n else pd.DataFrame()
    summary = {"start_time": start_time, "duration_s": 1800.0, "time_rest_s": 1500.0,
               "twitches": n, "episodes": len(episodes)}
    return SimpleNamespace(events=events, episodes=episodes, summary=summary)


@pytest.fixture(scope="module")
def journal_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("journal") / "journal.sqlite"
    with Journal(path) as j:
        for back, n in DAY_COUNTS.items():
            d = TODAY - timedelta(days=back)
            start = datetime(d.year, d.month, d.day, 21, 50).isoformat()
            j.record_analysis(_result(list(np.arange(n) * 30.0 + 5.0), start), None,
                              session_key=f"day{back}")
        j.record_assessment({"caffeine_mg_per_day": 400}, ASSESSMENT)
    return path


@pytest.fixture(scope="module")
def recording():
    rec, truth = simulate_recording(120.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=7,
                                    twitch_rate_per_min=20.0, voluntary_bursts=1)
    return rec, analyse(rec)


@pytest.fixture(scope="module")
def content(journal_path, recording):
    """The report of the test journal and recording (figures drawn once for the module)."""
    rec, result = recording
    with Journal(journal_path, create=False) as j:
        return build_report(j, rec, result, today=TODAY)


# ---------------------------------------------------------------- pieces


def test_densest_window_holds_the_cluster():
    times = np.r_[np.arange(3) * 40.0, 200.0 + np.arange(8) * 0.7, 290.0]
    t0, t1 = densest_window(times, duration_s=300.0, window_s=10.0)
    assert t1 - t0 == pytest.approx(10.0)
    assert t0 <= 200.0 and 200.0 + 7 * 0.7 <= t1
    assert densest_window(np.array([]), 300.0) == (0.0, 10.0)
    assert densest_window(np.array([1.0]), 4.0, 10.0) == (0.0, 4.0)  # short recording


def test_bandpass_for_display_removes_offset_and_keeps_gaps():
    fs = 1000.0
    t = np.arange(4000) / fs
    x = 500.0 + 20 * np.sin(2 * np.pi * 100 * t)  # big DC offset + in-band tone
    x[1000:1100] = np.nan
    y = bandpass_for_display(x, fs)
    assert np.isnan(y[1000:1100]).all() and np.isfinite(y[:1000]).all()
    assert abs(np.nanmean(y[2000:3500])) < 1.0
    assert np.nanstd(y[2000:3500]) == pytest.approx(20 / np.sqrt(2), rel=0.1)


def test_time_of_day_cells_count_twitches_and_mark_unrecorded(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        # 23:30 for 1 h: twitches at 23:40 and 00:10 the next day
        res = _result([600.0, 2400.0], "2026-03-01T23:30:00")
        res.summary["duration_s"] = 3600.0
        j.record_analysis(res, None, session_key="n1")
        cells = time_of_day_cells(j)
    assert list(cells.index) == ["2026-03-01", "2026-03-02"]
    assert cells.loc["2026-03-01", 23] == 1 and cells.loc["2026-03-02", 0] == 1
    assert cells.loc["2026-03-01"].isna().sum() == 23  # only 23:00 was recorded that day
    assert cells.loc["2026-03-02", 1] != cells.loc["2026-03-02", 1]  # NaN: not recorded


# ---------------------------------------------------------------- the page


class _Dom(HTMLParser):
    """Collects headings, images, table cells and the disclaimer text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.images: list[dict[str, str]] = []
        self.twitch_cells: list[str] = []
        self.body_attrs: dict[str, str] = {}
        self.disclaimer = ""
        self._in: list[str] = []
        self._disc_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = {k: v or "" for k, v in a.items()}
        if tag == "img":
            self.images.append({k: v or "" for k, v in a.items()})
        if tag == "div" and a.get("id") == "disclaimer":
            self._disc_depth = 1
        elif self._disc_depth and tag not in ("br", "img"):
            self._disc_depth += 1
        self._in.append("tw" if tag == "td" and a.get("class") == "tw" else tag)

    def handle_endtag(self, tag):
        if self._disc_depth:
            self._disc_depth -= 1
        if self._in:
            self._in.pop()

    def handle_data(self, data):
        if not self._in:
            return
        if self._in[-1] in ("h1", "h2", "h3"):
            self.headings.append(data.strip())
        if self._in[-1] == "tw":
            self.twitch_cells.append(data.strip())
        if self._disc_depth:
            self.disclaimer += data


def _parse(text: str) -> _Dom:
    d = _Dom()
    d.feed(text)
    return d


def test_page_is_self_contained_with_every_section(content, recording):
    _, result = recording
    page = render_html(content)
    dom = _parse(page)
    assert {"Your twitch report", "At a glance", "The signal with detected twitches", "Twitches per day",
            "Time of day", "Episodes", "Latest assessment", "What may help"} <= set(dom.headings)
    # no network resources: every src/href is inline data, and the CSP forbids the rest
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page
    assert len(dom.images) == 5
    for img in dom.images:
        assert img["alt"]
        head, b64 = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        w, h = png_size(base64.b64decode(b64))
        assert w > 300 and h > 150
    # twitch counts per recorded day, newest first, as in the journal ("-": the assessment's day)
    assert [c for c in dom.twitch_cells if c != "-"] == [str(DAY_COUNTS[k]) for k in sorted(DAY_COUNTS)]
    n_rec = int((result.events["type"] == "fasciculation").sum())
    assert f">{n_rec}</span><span class=\"k\">Twitches in this recording" in page
    # the knowledge base's words, not restated ones
    from toetwitch.models import cause_names, level_words

    assert level_words()["routine"][0] == "See a GP (routine)"
    assert _e(level_words()["routine"][0]) in page and _e(level_words()["routine"][1]) in page
    assert _e(cause_names()["caffeine_stimulants"]) in page
    assert "Cut caffeine down gradually over a week." in page
    assert ASSESSMENT["disclaimer"] in dom.disclaimer
    assert "does not diagnose" in dom.disclaimer


def test_page_without_journal_data_explains_empty_sections(tmp_path):
    path = tmp_path / "empty.sqlite"
    Journal(path).close()
    with Journal(path, create=False) as j:
        page = render_html(build_report(j))
    dom = _parse(page)
    assert dom.images == []
    assert "No recording chosen" in page and "No recordings in the journal yet." in page
    assert "No assessment yet" in page and "does not diagnose" in dom.disclaimer


def test_write_report_png_files_match_page_figures(content, tmp_path):
    written = write_report(content, tmp_path / "r" / "report.html", tmp_path / "png")
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["causes.png", "episodes.png", "signal.png", "time_of_day.png", "twitches_per_day.png"]
    assert len(written) == 6
    page = (tmp_path / "r" / "report.html").read_text()
    for name in pngs:
        data = (tmp_path / "png" / name).read_bytes()
        assert png_size(data)[0] > 0
        assert base64.b64encode(data).decode() in page  # the same figure as on the page


def test_cli_report_with_recording_file(journal_path, tmp_path, capsys):
    rec, _ = simulate_recording(30.0, fs_emg_hz=1000.0, seed=11, twitch_rate_per_min=30.0, acc=False)
    csv = tmp_path / "rest.csv"
    recording_table(rec.emg_uv, None, rec.fs_emg_hz).to_csv(csv, index=False)
    out = tmp_path / "report.html"
    rc = main(["report", "--journal", str(journal_path), "--recording", str(csv), "--html", str(out),
               "--png", str(tmp_path / "figs")])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "figs" / "signal.png").exists()
    page = out.read_text()
    assert "rest</strong>" in page  # the recording's name in the header
    assert len(_parse(page).images) == 5


def test_cli_report_needs_an_output_and_some_data(tmp_path, capsys):
    assert main(["report", "--journal", str(tmp_path / "j.sqlite")]) == 2
    assert "--html" in capsys.readouterr().err
    rc = main(["report", "--journal", str(tmp_path / "none.sqlite"), "--html", str(tmp_path / "r.html")])
    assert rc == 1 and "no journal at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists() and not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]
#: Appended by the test only: records what the browser decoded (naturalWidth/Height of images)
#: and whether the disclaimer is visible, in attributes that --dump-dom shows.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images).map(i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight);
  document.body.setAttribute('data-images', imgs.join(' '));
  const d = document.getElementById('disclaimer').getBoundingClientRect();
  document.body.setAttribute('data-disclaimer', d.width + 'x' + d.height);
});
</script>"""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = _find_chromium()
    if exe:
        return exe
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless Chromium is not installed (install Debian's 'chromium' package to run "
                    "the rendering test; it installs itself only when running as root with apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env,
                       capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=900,
                       env=env, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"headless Chromium is missing and 'apt-get install chromium' failed: {exc}")
    exe = _find_chromium()
    if not exe:
        pytest.skip("apt-get install chromium ran but no chromium binary was found")
    return exe


def _run_chromium(exe: str, tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(chromium, content, tmp_path):
    page = render_html(content)
    # The page forbids scripts; the probe needs inline script, and nothing else is relaxed:
    # images must still be data: URLs for the browser to decode them.
    probe_page = page.replace("script-src 'none'", "script-src 'unsafe-inline'")
    assert probe_page != page
    probe_page = probe_page.replace("</body>", PROBE + "</body>")
    html_file = tmp_path / "probe.html"
    html_file.write_text(probe_page, encoding="utf-8")
    done = _run_chromium(chromium, tmp_path, html_file.as_uri(), "--virtual-time-budget=10000",
                         "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _parse(done.stdout)
    assert "Your twitch report" in dom.headings and "Latest assessment" in dom.headings
    decoded = dom.body_attrs.get("data-images", "").split()
    assert len(decoded) == 5, dom.body_attrs
    for item in decoded:
        complete, size = item.split(":")
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 300 and h > 150, item
    dw, dh = (float(v) for v in dom.body_attrs["data-disclaimer"].split("x"))
    assert dw > 100 and dh > 10  # the disclaimer takes visible space
    assert "does not diagnose" in dom.disclaimer
    assert [c for c in dom.twitch_cells if c != "-"] == [str(DAY_COUNTS[k]) for k in sorted(DAY_COUNTS)]

    # the real page (scripts forbidden) as a screenshot: not blank
    real = tmp_path / "report.html"
    real.write_text(page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = _run_chromium(chromium, tmp_path, real.as_uri(), f"--screenshot={shot}",
                         "--window-size=1100,3000")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1100
    assert float(img[..., :3].std()) > 0.05  # text and figures, not an empty page


def test_cli_report_recording_only_without_journal(tmp_path, capsys):
    rec, _ = simulate_recording(20.0, fs_acc_hz=100.0, seed=5, twitch_rate_per_min=30.0, emg=False,
                                acc_twitch_fraction=1.0)
    csv = tmp_path / "acc.csv"
    recording_table(None, rec.acc_g, fs_acc_hz=100.0).to_csv(csv, index=False)
    out = tmp_path / "r.html"
    missing = tmp_path / "none.sqlite"
    assert main(["report", "--journal", str(missing), "--recording", str(csv), "--html", str(out)]) == 0
    assert not missing.exists()  # reading never creates a journal
    page = out.read_text()
    dom = _parse(page)
    assert len(dom.images) == 1  # the signal only
    assert "No journal yet" in page and "does not diagnose" in dom.disclaimer


# ---------------------------------------------------------------- the night view (limb movements)

#: Appended by the night-view test only: what the browser laid out for the timeline.
NIGHT_PROBE = """<script>
window.addEventListener('load', () => {
  const svg = document.getElementById('night-view');
  const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const wide = Array.from(document.querySelectorAll('#night-view rect.lm'))
    .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 20);
  const series = document.querySelectorAll('#night-view rect.plm-series').length;
  document.body.setAttribute('data-night', r.width + 'x' + r.height + ':' + wide.length + ':' + series);
});
</script>"""


def _acc_night(with_movements: bool):
    from tests.helpers import still_acc, tilt_acc
    from toetwitch.drivers import Recording

    fs = 52.0
    acc = still_acc(900.0, fs, 1.0, seed=8)
    if with_movements:
        for t in np.arange(120.0, 400.0, 28.0):  # a periodic series of 10
            tilt_acc(acc, fs, t, 1.5, 10.0)
        for t in (600.0, 800.0):  # isolated
            tilt_acc(acc, fs, t, 3.0, 8.0)
    rec = Recording(acc_g=acc, fs_acc_hz=fs, name="foot-night", start_time="2026-03-19T23:10:00")
    return rec, analyse(rec)


@pytest.fixture(scope="module")
def night_pages():
    pages = {}
    for moved in (True, False):
        rec, result = _acc_night(moved)
        pages[moved] = (result, render_html(build_report(None, rec, result, today=TODAY)))
    return pages


class _Night(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.bars: list[str] = []
        self.series = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "rect" and (a.get("class") or "").split()[:1] == ["lm"]:
            self.bars.append(a["class"])
        if tag == "rect" and a.get("class") == "plm-series":
            self.series += 1


def test_night_view_shows_each_limb_movement_and_the_series(night_pages):
    from toetwitch.pipeline.present.capability import ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT

    result, page = night_pages[True]
    s = result.summary
    d = _Night()
    d.feed(page)
    assert "night" in d.sections
    assert len(d.bars) == s["limb_movements"] == 12
    assert d.series == s["plm_series"] == 1
    assert d.bars.count("lm plm") == 10  # the series' movements, highlighted
    assert f"{s['plm_index_per_h']:.1f}" in page and "PLM index per hour" in page
    assert ">23:10<" in page  # clock times along the timeline (the start is known)
    # accelerometer alone: what it can count, and that these figures are not a diagnosis
    assert _e(ACC_ONLY_CAPABILITY[1:]) in page and _e(ACTIGRAPHY_CAVEAT[1:]) in page


def test_no_night_view_without_limb_movements(night_pages):
    result, page = night_pages[False]
    assert result.summary["limb_movements"] == 0
    d = _Night()
    d.feed(page)
    assert "night" not in d.sections and not d.bars and "night-view" not in page
    assert "signal" in d.sections


def test_night_view_renders_in_headless_chromium(chromium, night_pages, tmp_path):
    for moved, expect in ((True, (12, 1)), (False, (0, 0))):
        page = night_pages[moved][1]
        probe = page.replace("script-src 'none'", "script-src 'unsafe-inline'")
        probe = probe.replace("</body>", NIGHT_PROBE + "</body>")
        html_file = tmp_path / f"night-{moved}.html"
        html_file.write_text(probe, encoding="utf-8")
        done = _run_chromium(chromium, tmp_path, html_file.as_uri(), "--virtual-time-budget=10000",
                             "--window-size=1100,2000", "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        size, bars, series = _parse(done.stdout).body_attrs["data-night"].split(":")
        w, h = (float(v) for v in size.split("x"))
        assert (int(bars), int(series)) == expect
        if moved:
            assert w > 600 and h > 60  # laid out across the page, each bar visible
        else:
            assert w == 0
