_base_ = './groupmixformer-small_8xb128_in1k.py'
# drop path 0.1 as in the released groupmixformer_large.yaml
model = dict(backbone=dict(arch='large', drop_path_rate=0.1), head=dict(in_channels=480))
