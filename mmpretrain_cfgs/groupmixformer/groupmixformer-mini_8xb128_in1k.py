_base_ = './groupmixformer-small_8xb128_in1k.py'
model = dict(backbone=dict(arch='mini', drop_path_rate=0.1), head=dict(in_channels=160))
