_base_ = './mask-rcnn_sgformer-s_fpn_ms-crop-3x_coco.py'
model = dict(
    backbone=dict(arch='m', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint='checkpoints/sgformer-m_in1k.pth')))
