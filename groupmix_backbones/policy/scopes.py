"""Why the inference APIs of mmdet, mmseg and mmpretrain cannot follow one another in one process,
and the wrappers that let them (installed by :mod:`groupmix_backbones.policy`).

Root cause (mmengine 0.10.7, mmdet 3.3.0, mmseg 1.2.2, mmpretrain 1.2.0; upstream mmengine#1105):
a registry build without an explicit ``_scope_`` looks the type up in the process-wide *current
default scope* (``DefaultScope.get_current_instance()``, the most recently created one), not in the
registry it was called on. ``init_detector``, ``DetInferencer``, mmseg's ``init_model`` and
``MMSegInferencer`` set that scope with ``init_default_scope``, which creates a new process-wide
instance and never restores the previous one. So after any of them:

* ``ImageClassificationInferencer`` builds its test pipeline from mmpretrain's TRANSFORMS without
  setting a scope, and the lookup goes to the scope left behind ("ResizeEdge is not in the
  mmseg::transform registry"; mmpretrain#1839);
* ``inference_detector`` and mmseg's ``inference_model`` build their pipeline on every call from
  the generic registry, trusting the scope their own ``init_*`` left, and get the other library's
  transforms instead (mmseg's ``LoadAnnotations`` for a detector, mmdet#10501; or a KeyError,
  mmseg#3408).

The fix: each of these builds runs in the scope its model belongs to, and the process-wide scope is
left as it was.
"""
import copy
import functools

from mmengine.registry import DefaultScope


def run_in_scope(function, scope_of):
    """``function`` run with the default scope ``scope_of(*args, **kwargs)``, after which the
    process-wide scope is as it was."""
    @functools.wraps(function)
    def scoped(*args, **kwargs):
        with DefaultScope.overwrite_default_scope(scope_of(*args, **kwargs)):
            return function(*args, **kwargs)
    return scoped


def pipeline_in_scope(get_pipeline):
    """mmdet's ``get_test_pipeline_cfg(cfg)`` returning a copy whose transforms name the config's
    scope, so that ``Compose`` builds each of them there."""
    @functools.wraps(get_pipeline)
    def scoped(cfg):
        pipeline = copy.deepcopy(get_pipeline(cfg))
        for transform in pipeline:
            transform.setdefault('_scope_', cfg.get('default_scope', 'mmdet'))
        return pipeline
    return scoped

