"""For each paper of :data:`groupmix_backbones.zoo.COLLECTIONS`: a short description in our words,
its BibTeX and the licence of its official repository as found there. Plain data;
``tools/model_zoo.py`` writes them into the README beside each family's configs."""

#: what the paper's method does, in our words (one paragraph)
DESCRIPTIONS = {
    'GroupMixFormer': (
        'Group-Mix Attention relates tokens to groups of neighbouring tokens as well as to '
        'tokens: of five channel groups of the queries, keys and values, one is used as it is, '
        'three are first aggregated by separable convolutions (3x3, 5x5, 7x7) into group '
        'proxies, and all four share one attention; the fifth bypasses attention through a local '
        'aggregator. GroupMixFormer stacks such blocks in the four stages of a pyramid with a '
        'convolutional stem.'),
    'FLatten Transformer': (
        'Focused linear attention replaces the softmax with a kernel whose features are '
        'sharpened by a power of their ReLU features at the same norm (the focusing function), '
        'so that attention stays linear in the number of tokens yet focused, and adds a '
        'depthwise convolution of the values that restores the rank a linear attention map '
        'lacks. The paper puts it into the early stages of PVT, PVTv2, Swin and CSWin.'),
    'SG-Former': (
        'Self-guided attention keeps attention global at a reduced cost by giving salient '
        'regions more tokens than the rest: hybrid-scale attention (half of the heads global on '
        'a shrunk map, half in local windows) yields a significance map, which evolves with the '
        'weights during training, and the next block merges the least significant tokens into '
        'large groups and the most significant into small ones before forming its keys and '
        'values.'),
    'Unified token mixers': (
        'One macro architecture (stem, stages, normalisation, MLP, layer scale and classifier '
        'neck shared) with five interchangeable spatial token mixers: Halo attention, spatial-'
        'reduction attention (PVT), shifted-window attention (Swin), the depthwise convolution '
        '(ConvNeXt) and deformable convolution v3 (InternImage), so that the mixers are compared '
        'with everything else equal.'),
}

#: BibTeX of each paper (SG-Former's official README swaps its title and authors; corrected here)
BIBTEX = {
    'GroupMixFormer': """@article{ge2023groupmixformer,
  title={Advancing Vision Transformers with Group-Mix Attention},
  author={Ge, Chongjian and Ding, Xiaohan and Tong, Zhan and Yuan, Li and Wang, Jiangliu and Song, Yibing and Luo, Ping},
  journal={arXiv preprint arXiv:2311.15157},
  year={2023}
}""",
    'FLatten Transformer': """@inproceedings{han2023flatten,
  title={FLatten Transformer: Vision Transformer using Focused Linear Attention},
  author={Han, Dongchen and Pan, Xuran and Han, Yizeng and Song, Shiji and Huang, Gao},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year={2023}
}""",
    'SG-Former': """@inproceedings{ren2023sgformer,
  title={SG-Former: Self-guided Transformer with Evolving Token Reallocation},
  author={Ren, Sucheng and Yang, Xingyi and Liu, Songhua and Wang, Xinchao},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year={2023}
}""",
    'Unified token mixers': """@article{hu2025demystify,
  title={Demystify Transformers \\& Convolutions in Modern Image Deep Networks},
  author={Hu, Xiaowei and Shi, Min and Wang, Weiyun and Wu, Sitong and Xing, Linjie and Wang, Wenhai and Zhu, Xizhou and Lu, Lewei and Zhou, Jie and Wang, Xiaogang and Qiao, Yu and Dai, Jifeng},
  journal={IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume={47},
  number={4},
  pages={2416--2428},
  year={2025}
}""",
}

#: the licence file of each official repository at the commit the zoo cites (None: the repository
#: has no licence file, so its code and weights carry no stated licence)
UPSTREAM_LICENSES = {
    'GroupMixFormer': 'MIT, its LICENSE file naming Microsoft Corporation as copyright holder',
    'FLatten Transformer': None,
    'SG-Former': None,
    'Unified token mixers': 'MIT, copyright 2022 OpenGVLab',
}
