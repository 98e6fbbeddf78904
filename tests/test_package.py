"""The package as a user installs it: a wheel built from the repository's files carries the configs,
tools and model-index.yml in ``groupmix_backbones/.mim/``; installed into a folder of its own (the
repository not importable), a config in an empty folder that inherits ours by
``groupmix_backbones::`` trains through our entry point and through mmpretrain's own
``tools/train.py``, and mmpretrain's ``tools/train.py`` trains our installed config by its path."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml
from mmengine.config import Config

import groupmix_backbones  # noqa: F401  (our package references)
from conftest import REPO
from groupmix_backbones.resources import RESOURCES

DEMO = 'mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py'
NOT_SOURCE = ('.venv', '.git', 'work_dirs', 'data', 'checkpoints', 'build', 'dist', '*.egg-info',
              '.mim', '__pycache__', '*.pyc', '.pytest_cache')


def config_inheriting(folder, base):
    path = folder / 'mine.py'
    path.write_text(f'_base_ = {base!r}\nmodel = dict(head=dict(num_classes=3))\n')
    return str(path)


def test_package_references_resolve_to_our_files(tmp_path):
    """``groupmix_backbones::PATH`` is our file at PATH (here the clone's), without a scope."""
    ours = Config.fromfile(config_inheriting(tmp_path, f'groupmix_backbones::{DEMO}'))
    by_path = Config.fromfile(config_inheriting(tmp_path, osp.join(REPO, DEMO)))
    assert ours.to_dict() == by_path.to_dict() and ours.model.head.num_classes == 3
    assert "_scope_='groupmix_backbones'" not in ours.pretty_text
    with pytest.raises(FileNotFoundError, match='mmpretrain_cfgs/ has no groupmixformer/none.py'):
        Config.fromfile(config_inheriting(tmp_path, 'groupmix_backbones::mmpretrain_cfgs/'
                                                    'groupmixformer/none.py'))


def test_examples_build(tmp_path):
    """docs/get_started.md's config of mmdet's own with our backbone by custom_imports."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'examples',
                                   'custom-imports_mask-rcnn_sgformer-s_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    detector = MODELS.build(cfg.model)
    assert type(detector.backbone).__name__ == 'SGFormer'
    assert list(detector.backbone.out_channels) == cfg.model.neck.in_channels


def run(command, **kwargs):
    """``command``, its output shown when it fails."""
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)
    assert done.returncode == 0, f'{" ".join(map(str, command))} failed:\n{done.stdout[-6000:]}'
    return done.stdout


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel built from a copy of the repository (its files only, outside the repository)."""
    root = tmp_path_factory.mktemp('package')
    source = root / 'source'
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
         '-w', str(root / 'dist'), str(source)])
    return glob.glob(str(root / 'dist' / 'groupmix_backbones-*.whl'))[0]


@pytest.fixture(scope='module')
def target(wheel, tmp_path_factory):
    """The wheel installed into a folder of its own, as ``pip install --target`` does."""
    folder = tmp_path_factory.mktemp('target')
    run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-compile', '-q',
         '--disable-pip-version-check', '--target', str(folder), wheel])
    return folder


def test_wheel_carries_the_configs_tools_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mim = 'groupmix_backbones/.mim/'
    expected = set()
    for resource in RESOURCES:
        path = osp.join(REPO, resource)
        files = ([path] if osp.isfile(path) else
                 [osp.join(folder, name) for folder, dirs, files in os.walk(path)
                  for name in files if '__pycache__' not in folder and not name.endswith('.pyc')])
        expected |= {mim + osp.relpath(file, REPO) for file in files}
    assert len(expected) > 200 and not expected - names
    assert not [name for name in names if '__pycache__' in name]
    with zipfile.ZipFile(wheel) as archive:
        index = yaml.safe_load(archive.read(mim + 'model-index.yml'))
        assert all(mim + metafile in names for metafile in index['Import'])
        info = next(name for name in names if name.endswith('.dist-info/METADATA'))
        metadata = archive.read(info).decode()
    assert 'License-Expression: Apache-2.0' in metadata
    assert 'Requires-Dist: mmdet==3.3.0' in metadata
    assert any(name.endswith('.dist-info/licenses/LICENSE') for name in names)


def user_config(folder, demo_root, base):
    """A user's config in ``folder``: ours by ``base``, on the demo data, one short epoch."""
    data = osp.join(demo_root, 'imagenet')
    path = folder / 'my_classifier.py'
    path.write_text(
        f'_base_ = {base!r}\n'
        f'train_dataloader = dict(dataset=dict(data_root={data!r}))\n'
        f'val_dataloader = dict(dataset=dict(data_root={data!r}))\n'
        'test_dataloader = val_dataloader\n'
        'param_scheduler = None\n'
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
        'default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))\n')
    return path


def trained(work_dir):
    return osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


def test_installed_package_trains_a_config_inheriting_ours(target, demo_root, tmp_path):
    """From an empty folder, with only the installed wheel importable."""
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    env.pop('PYTHONSAFEPATH', None)
    folder = tmp_path / 'my_project'
    folder.mkdir()
    found = run([sys.executable, '-c', 'import importlib.util; '
                 'print(importlib.util.find_spec("groupmix_backbones").origin)'],
                cwd=folder, env=env)
    assert found.strip() == str(target / 'groupmix_backbones' / '__init__.py')
    config = user_config(folder, demo_root, f'groupmix_backbones::{DEMO}')

    # our entry point
    run([sys.executable, '-m', 'groupmix_backbones', 'train', config.name, '--work-dir', 'ours'],
        cwd=folder, env=env)
    assert trained(folder / 'ours')
    # mmpretrain's own tools/train.py, run with our package imported first (the package reference)
    run([sys.executable, '-m', 'groupmix_backbones', 'mmpretrain::train', config.name,
         '--work-dir', 'theirs'], cwd=folder, env=env)
    assert trained(folder / 'theirs')
    # mmpretrain's own tools/train.py as it is, given our installed config by its path: the
    # config's custom_imports brings our package in
    library_train = osp.join(osp.dirname(importlib.util.find_spec('mmpretrain').origin), '.mim',
                             'tools', 'train.py')
    data = osp.join(demo_root, 'imagenet')
    run([sys.executable, library_train,
         str(target / 'groupmix_backbones' / '.mim' / DEMO), '--work-dir', 'plain',
         '--cfg-options', f'train_dataloader.dataset.data_root={data}',
         f'val_dataloader.dataset.data_root={data}', 'param_scheduler=None',
         'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], cwd=folder, env=env)
    assert trained(folder / 'plain')
