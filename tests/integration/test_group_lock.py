"""One process per consumer group, on SQLite and PostgreSQL."""

import subprocess
import sys

import pytest

from driftline.errors import StoreError
from driftline.store import SqlStore


def test_a_second_process_for_the_same_group_is_refused(store_url):
    first = SqlStore(store_url)
    first.state.lock_group("g1")
    code = ("import sys; from driftline.store import SqlStore\n"
            "from driftline.errors import StoreError\n"
            f"s = SqlStore({store_url!r})\n"
            "try:\n    s.state.lock_group('g1')\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
            )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other.returncode == 3, other.stderr
    assert "another driftline process is serving consumer group 'g1'" in other.stdout
    second = SqlStore(store_url)
    second.state.lock_group("g2")  # another group is fine
    first.close()  # the holder ends: the group is free again
    third = SqlStore(store_url)
    third.state.lock_group("g1")
    third.close()
    second.close()


def test_in_memory_databases_are_private_and_need_no_lock():
    a, b = SqlStore("sqlite://"), SqlStore("sqlite://")
    a.state.lock_group("g")
    b.state.lock_group("g")  # each in-memory database belongs to its own process anyway


def test_scale_out_processes_share_the_lock_and_keep_a_single_process_out(store_url):
    a, b, single = SqlStore(store_url), SqlStore(store_url), SqlStore(store_url)
    try:
        a.state.lock_group("g1", shared=True)
        b.state.lock_group("g1", shared=True)  # scale-out processes run side by side
        with pytest.raises(StoreError, match="set kafka.scale_out: true on all of them"):
            single.state.lock_group("g1")  # a single process (or `db reset-state`) is refused
        a.close()
        b.close()
        single.state.lock_group("g1")
        late = SqlStore(store_url)
        with pytest.raises(StoreError, match="scale-out processes .* cannot join it"):
            late.state.lock_group("g1", shared=True)
        late.close()
    finally:
        single.close()
