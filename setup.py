"""The packaging metadata is in pyproject.toml. This file adds what OpenMMLab packages carry in
``<package>/.mim/`` (mmdet's setup.py ``add_mim_extension`` does the same): the configs, the tools
and model-index.yml, laid out as in the repository. A wheel (``pip install .``, ``pip wheel .``)
gets copies; an editable install (``pip install -e .``) gets links to the clone's files in
``groupmix_backbones/.mim/`` (not committed), so edits show at once."""
import os
import os.path as osp
import runpy
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
RESOURCES = runpy.run_path(osp.join(ROOT, 'groupmix_backbones', 'resources.py'))['RESOURCES']


def fresh(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


class BuildPyWithMim(build_py):
    """build_py, then the .mim/ folder: copied into the build, or linked in the clone."""

    def run(self):
        super().run()
        editable = getattr(self, 'editable_mode', False)
        mim = osp.join(ROOT if editable else self.build_lib, 'groupmix_backbones', '.mim')
        os.makedirs(mim, exist_ok=True)
        for name in RESOURCES:
            source, target = osp.join(ROOT, name), osp.join(mim, name)
            fresh(target)
            if editable:
                os.symlink(osp.relpath(source, mim), target)
            elif osp.isdir(source):
                shutil.copytree(source, target,
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(source, target)


setup(cmdclass={'build_py': BuildPyWithMim})
