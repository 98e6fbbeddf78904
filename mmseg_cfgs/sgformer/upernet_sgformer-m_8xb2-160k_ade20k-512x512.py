_base_ = './upernet_sgformer-s_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='m', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint='checkpoints/sgformer-m_in1k.pth')))
