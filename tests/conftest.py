import importlib.util
import os
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relative_path):
    """Import a script under tools/ (not a package) as a module."""
    path = osp.join(REPO, relative_path)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def process_tree(root):
    """``root`` and every process below it (from /proc), parents first."""
    children = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            stat = open(f'/proc/{pid}/stat').read()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(pid))
    tree = [root]
    for pid in tree:
        tree += children.get(pid, [])
    return tree


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """A tiny demo dataset of all three tasks, generated once per test session."""
    root = str(tmp_path_factory.mktemp('demo'))
    load_tool('tools/make_demo_data.py').make_demo_data(
        out=root, seed=0, verbose=False, num_train_cls=4, num_val_cls=2, num_train_det=6,
        num_val_det=4, det_size=128, num_train_seg=6, num_val_seg=4, seg_size=64)
    return root


@pytest.fixture
def in_repo():
    """Run with the repository as working directory (configs use relative data paths)."""
    cwd = os.getcwd()
    os.chdir(REPO)
    yield REPO
    os.chdir(cwd)


@pytest.fixture(autouse=True)
def keep_thread_count():
    """Tools run in-process (benchmarks) set torch's thread count; a later test in this process
    would then reduce in another order than its subprocesses (resume tests compare losses exactly)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
