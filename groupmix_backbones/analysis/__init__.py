"""What the analysis tools share: models built from configs, FLOP counting, time and memory."""
from .flops import count_flops, sdpa_flop_jit
from .model import TensorForward, build_model
from .profile import make_step, measure, measure_alternately, peak_rss, reset_peak_rss

__all__ = ['count_flops', 'sdpa_flop_jit', 'TensorForward', 'build_model', 'make_step',
           'measure', 'measure_alternately', 'peak_rss', 'reset_peak_rss']
