"""The suite's own xdist groups: the tests that share a costly fixture are scheduled on one worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.slow  # two pytester sessions, each loading the plugins
def test_tests_sharing_small_zoo_or_a_module_fixture_carry_their_group_in_the_id_loadgroup_reads(pytester):
    """Catches the groups being ignored: pytest-xdist names the group in the test id in a collection hook that ran
    before conftest's marks (and, with pytest 9.2, in an attribute the id no longer comes from), so every worker
    built small_zoo and each module fixture again."""
    from tests.conftest import pytest_collection_modifyitems

    items = pytester.getitems("""
        import pytest

        @pytest.fixture(scope="session")
        def small_zoo():
            return 1

        @pytest.fixture(scope="module")
        def night():
            return 2

        def test_zoo(small_zoo): pass
        def test_night(night): pass
        @pytest.mark.xdist_group("own")
        def test_own(): pass
        def test_alone(): pass
        """)
    pytest_collection_modifyitems(SimpleNamespace(option=SimpleNamespace(loadgroup=True)), items)
    ids = {item.name: item.nodeid for item in items}
    assert ids["test_zoo"].endswith("::test_zoo@small_zoo")
    night = next(item for item in items if item.name == "test_night")
    assert ids["test_night"].endswith(f"::test_night@{night.module.__name__}::night")
    assert ids["test_own"].endswith("::test_own@own")
    assert "@" not in ids["test_alone"]
    # Without --dist loadgroup (a plain run, or the controller), ids stay as they are.
    plain = pytester.getitems("def test_zoo(small_zoo): pass\n")
    pytest_collection_modifyitems(SimpleNamespace(option=SimpleNamespace()), plain)
    assert "@" not in plain[0].nodeid


def test_the_workers_start_with_the_zoo_then_the_files_with_most_slow_tests_each_file_kept_together():
    # Catches: the zoo's group of minutes left last in file-name order (one worker ran it alone at the end), and
    # a file's tests split apart (its module fixture then made twice).
    from tests.conftest import _longest_modules_first

    def item(module: str, name: str, slow: bool = False, zoo: bool = False):
        return SimpleNamespace(module=SimpleNamespace(__name__=module), name=name,
                               fixturenames=["small_zoo"] if zoo else [],
                               get_closest_marker=lambda mark: mark if slow and mark == "slow" else None)

    items = [item("a", "a1"), item("b", "b1", slow=True), item("a", "a2", slow=True), item("c", "c1", slow=True),
             item("c", "c2", slow=True), item("z", "z1"), item("z", "z2", slow=True, zoo=True)]
    assert [i.name for i in _longest_modules_first(items)] == ["z1", "z2", "c1", "c2", "a1", "a2", "b1"]
