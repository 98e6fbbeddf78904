_base_ = './sgformer-s_8xb128_in1k.py'
model = dict(backbone=dict(arch='m', drop_path_rate=0.2))
