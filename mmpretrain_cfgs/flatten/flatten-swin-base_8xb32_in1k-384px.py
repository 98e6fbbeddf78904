# FLatten-Swin-B fine-tuned at 384x384 from the 224 model (cfgs/flatten_swin_b_384.yaml): 30
# epochs on 8 GPUs x 32, AdamW lr 2e-5 x 256 / 512 = 1e-5, weight decay 1e-8, 5 warmup epochs from
# lr x 1e-3, cosine to lr x 0.01, gradient clipping 5, drop path 0.5, the 224 augmentation at 384,
# test resize to 384x384 without a crop (TEST.CROP False). Starts from the converted 224 weights.
# Loading the 224 checkpoint, the key position encodings of stages 1-2 and the relative position
# tables of stages 3-4 are interpolated to 384 (bicubic, as the
# official fine-tune does).
_base_ = ['./flatten-swin-base_8xb64_in1k.py', '../../common_cfgs/in1k-384px_pipelines.py']
model = dict(backbone=dict(arch='base_384'))
train_dataloader = dict(batch_size=32, dataset=dict(pipeline={{_base_.train_pipeline_384px}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_384px}}))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-5, weight_decay=1e-8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=5,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=30)
auto_scale_lr = dict(base_batch_size=256)
load_from = 'checkpoints/flatten-swin-base_in1k.pth'
