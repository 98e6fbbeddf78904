from .groupmixformer import GroupMixFormer

__all__ = ['GroupMixFormer']
