"""Our configs as mmengine package references: ``_base_ = 'groupmix_backbones::mmdet_cfgs/...'``
(installed by :mod:`groupmix_backbones.policy`).

mmengine 0.10.7 resolves ``package::path`` only for the OpenMMLab packages in its
``MODULE2PACKAGE`` table (``mmengine does not support to load ... config``, mmengine#1410; the fix
proposed in mmengine#1411 was closed), looks the file up in ``<package>/.mim/configs/`` and gives
every typed dict of such a base ``_scope_=package``. Our configs are mmpretrain, mmdet or mmseg
configs (their own ``default_scope``) laid out as in the repository, so a reference to ours resolves
to the file itself, in the package's ``.mim/`` or the clone (:func:`..resources.resource_path`),
with no scope: as if the user's config named that file by its path.
"""
import functools

from ..resources import PACKAGE, resource_path


def package_configs_resolved(get_cfg_path):
    """mmengine's ``Config._get_cfg_path(cfg_path, filename) -> (path, scope)`` resolving
    ``groupmix_backbones::RELATIVE`` to our file, with no scope."""
    @functools.wraps(get_cfg_path)
    def resolve(cfg_path, filename):
        package, separator, relative = cfg_path.partition('::')
        if separator and package == PACKAGE:
            return resource_path(relative), None
        return get_cfg_path(cfg_path, filename)
    return resolve
