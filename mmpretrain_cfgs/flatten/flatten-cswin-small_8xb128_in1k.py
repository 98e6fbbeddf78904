_base_ = './flatten-cswin-tiny_8xb256_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.4))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
auto_scale_lr = dict(base_batch_size=1024)
