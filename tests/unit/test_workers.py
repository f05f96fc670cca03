"""The worker pool the transfers share: every item done, or the first failure raised."""

import threading

import pytest

from gensvc.core.workers import run_each


def test_every_item_is_handed_to_the_task_once():
    seen, lock = [], threading.Lock()

    def task(item):
        with lock:
            seen.append(item)

    run_each(task, range(20), workers=4)
    assert sorted(seen) == list(range(20))


def test_the_first_failure_is_raised_and_items_not_begun_are_not_run():
    begun = []

    def task(item):
        begun.append(item)
        if item == 0:
            raise ValueError("part 0 broke")

    with pytest.raises(ValueError, match="part 0 broke"):
        run_each(task, range(50), workers=1)
    assert len(begun) < 50  # the rest were cancelled (one may have begun before the cancel)


def test_no_workers_asked_for_still_runs_with_one():
    seen = []
    run_each(seen.append, [1, 2], workers=0)
    assert seen == [1, 2]
