# UperNet + auxiliary FCN head with FLatten-CSWin-T on ADE20K, mmseg's transformer-backbone
# 160k recipe (AdamW 6e-5, weight decay 0.01, poly, 1500 warmup iterations, 8 GPUs x 2 images).
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
          '../../common_cfgs/flatten-cswin-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, decode_head=dict(in_channels=[64, 128, 256, 512]),
             auxiliary_head=dict(in_channels=256))
