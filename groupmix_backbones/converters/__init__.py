"""Official checkpoints -> ours: one core (:mod:`.core`) and one rule table per family."""
from .core import (ENTRIES, FORMATS, ConversionError, OfficialFormat, Rules, convert_for_model,
                   describe_keys, official_entry, official_state_dict, recognise,
                   register_format)
from .flatten import FLATTEN
from .groupmixformer import GROUPMIXFORMER
from .sgformer import SGFORMER
from .stm import DETECTION_RESULTS, STM, STM_DETECTION

__all__ = ['ENTRIES', 'FORMATS', 'ConversionError', 'OfficialFormat', 'Rules', 'convert_for_model',
           'describe_keys', 'official_entry', 'official_state_dict', 'recognise',
           'register_format', 'DETECTION_RESULTS', 'FLATTEN', 'GROUPMIXFORMER', 'SGFORMER', 'STM',
           'STM_DETECTION']
