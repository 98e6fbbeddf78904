"""Official checkpoints -> ours: one core (:mod:`.core`) and one rule table per family."""
from .core import (FORMATS, ConversionError, OfficialFormat, Rules, describe_keys,
                   official_state_dict, recognise, register_format)
from .flatten import FLATTEN
from .groupmixformer import GROUPMIXFORMER
from .sgformer import SGFORMER
from .stm import STM

__all__ = ['FORMATS', 'ConversionError', 'OfficialFormat', 'Rules', 'describe_keys',
           'official_state_dict', 'recognise', 'register_format', 'FLATTEN', 'GROUPMIXFORMER',
           'SGFORMER', 'STM']
