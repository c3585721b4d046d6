"""Fixtures shared by the test modules."""
import pytest

from tests.small_demo import build_small_demo, single_thread


@pytest.fixture(scope="module")
def data_root(request, tmp_path_factory):
    """A small demo corpus for the module: DEMO_SPLITS (train, val, test) clips, (40, 8, 8) if the
    module sets none."""
    return build_small_demo(tmp_path_factory, getattr(request.module, "DEMO_SPLITS", (40, 8, 8)))


@pytest.fixture
def one_thread():
    """One torch thread for the test (see small_demo.single_thread)."""
    with single_thread():
        yield
