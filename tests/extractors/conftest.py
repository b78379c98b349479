import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run model tests on one thread: on a shared 2-core machine, two OpenMP
    threads wait on each other whenever another process holds a core, and a
    test that takes seconds alone takes minutes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
