# CPU-sized classification demo of the unified architecture (any mixer) on the generated shapes
# dataset: the data and recipe of the GroupMixFormer demo with the family's classifier neck, and
# the parameter groups this family needs to learn from scratch in a few epochs: its layer scales
# start at 1e-6 (10x their learning rate, no decay), its stride-4 stem and strided downsampling
# convs at 0.1x. U-InternImage reached 43% top-1 after 12 epochs on the shared recipe; with these
# groups 58% after 18, 74% after 30 (docs/design_notes.md). Leaves set the backbone and the neck's
# and head's widths.
_base_ = './classification_demo-recipe.py'
model = dict(backbone=dict(out_indices=(3, )),
             neck=dict(_delete_=True, type='PointwiseConvPoolNeck'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    '.gamma': dict(lr_mult=10.0, decay_mult=0.0),
    'backbone.patch_embed.': dict(lr_mult=0.1),
    '.downsample.': dict(lr_mult=0.1)}))
train_cfg = dict(max_epochs=30)
