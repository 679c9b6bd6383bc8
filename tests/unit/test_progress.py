"""Progress: a tqdm bar (rate, ETA) on a terminal; off one, a log line now and then."""

import io
import logging

from driftline.progress import LOG_EVERY, Progress, Tracked


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_with_rate_and_eta():
    out = Terminal()
    with Progress("replay events.jsonl", 1000, stream=out) as bar:
        for _ in range(10):
            bar.advance(100)
        bar.bar.refresh()
    text = out.getvalue()
    assert "replay events.jsonl" in text and "100%" in text and "B/s" in text and "<" in text  # elapsed<ETA


def test_off_a_terminal_quiet_but_a_log_line_every_while(caplog):
    now = [0.0]
    out = io.StringIO()
    bar = Progress("replay big.jsonl", 4096, stream=out, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="driftline.progress"):
        bar.to(1024)
        now[0] = LOG_EVERY + 1
        bar.to(2048)
    bar.close()
    assert out.getvalue() == ""
    assert [r.getMessage() for r in caplog.records] == ["replay big.jsonl: 2.00kB of 4.00kB (50%), 66.1B/s"]


def test_tracked_moves_by_the_bytes_read(tmp_path):
    from driftline.streams.files import FileSource
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 100)
    source = FileSource(path, batch_size=10)
    bar = Progress("x", source.size(), stream=io.StringIO())
    tracked = Tracked(source, bar)
    tracked.poll()
    assert bar.done == 90 and not tracked.done
    while not tracked.done:
        tracked.poll()
    assert bar.done == 900
