"""Where the configs, tools and ``model-index.yml`` are: in ``<package>/.mim/`` once installed (as
mmdet, mmseg and mmpretrain ship theirs; copies in a wheel, links in an editable install), at the
repository root in a clone. Standard library only: ``setup.py`` reads :data:`RESOURCES` from here.
"""
import os.path as osp

# the repository's files and folders that the installed package carries under .mim/, same layout
RESOURCES = ('mmpretrain_cfgs', 'mmdet_cfgs', 'mmseg_cfgs', 'common_cfgs', 'tools',
             'model-index.yml')
PACKAGE = 'groupmix_backbones'
PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def resource_root() -> str:
    """The folder holding :data:`RESOURCES`: the package's ``.mim/`` if it has one, else the clone
    the package is imported from."""
    for root in (osp.join(PACKAGE_DIR, '.mim'), osp.dirname(PACKAGE_DIR)):
        if osp.isfile(osp.join(root, 'model-index.yml')):
            return root
    raise FileNotFoundError(
        f'{PACKAGE} at {PACKAGE_DIR} has neither .mim/ (an installed wheel) nor a repository '
        f'around it: reinstall it (pip install groupmix_backbones, or pip install -e CLONE).')


def resource_path(relative: str) -> str:
    """The absolute path of ``relative`` (e.g. ``mmdet_cfgs/sgformer/x.py``, ``tools/train.py``),
    which must exist."""
    path = osp.join(resource_root(), relative)
    if not osp.exists(path):
        top = relative.replace('\\', '/').split('/')[0]
        where = (f'{top}/ has no {relative[len(top) + 1:]}' if top in RESOURCES else
                 f'it is not under one of {", ".join(RESOURCES)}')
        raise FileNotFoundError(f'{PACKAGE}::{relative} does not exist ({where}; looked in '
                                f'{resource_root()}).')
    return path
