"""Broken data says what and where: each kind of damage, on a copy of the demo data, stops the run
before training with an error naming the file (label maps: at the first batch that holds one),
and tools/misc/check_dataset.py reports every problem of every split at once."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.runner import Runner
from PIL import Image

from conftest import REPO, load_tool
from groupmix_backbones.data_checks import DatasetError
from groupmix_backbones.runtime import prepare_cfg
from test_runtime import demo_cfg
from test_tasks import DATA, DEMOS


def first_file(folder, suffix):
    return osp.join(folder, sorted(f for f in os.listdir(folder) if f.endswith(suffix))[0])


def truncate_an_image(root):
    path = first_file(osp.join(root, 'train/circle'), '.JPEG')
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    return path


def remove_an_image(root):
    path = first_file(osp.join(root, 'train2017'), '.jpg')
    os.remove(path)
    return path


def edit_coco(root, edit):
    path = osp.join(root, 'annotations/instances_train2017.json')
    coco = json.load(open(path))
    edit(coco)
    json.dump(coco, open(path, 'w'))
    return path


def unknown_category(root):
    return edit_coco(root, lambda coco: coco['annotations'][0].update(category_id=99))


def no_annotations(root):
    return edit_coco(root, lambda coco: coco['annotations'].clear())


def label_beyond_classes(root):
    path = first_file(osp.join(root, 'annotations/training'), '.png')
    labels = np.array(Image.open(path))
    labels[:] = 9  # the demo has 7 classes (background, 6 shapes); everywhere: any crop has it
    Image.fromarray(labels).save(path)
    return path


def ragged_folders(root):
    """The class-folder layout (no annotation list): one image loose at the top, one folder that
    is not a class."""
    os.remove(osp.join(root, 'meta/train.txt'))
    train = osp.join(root, 'train')
    image = first_file(osp.join(train, 'square'), '.JPEG')
    shutil.move(image, osp.join(train, osp.basename(image)))
    os.rename(osp.join(train, 'ring'), osp.join(train, 'hexagon'))
    return train


def class_folders_only(root):
    """The class-folder layout as it is (no annotation list): the demo's classes are not sorted."""
    os.remove(osp.join(root, 'meta/train.txt'))
    return osp.join(root, 'train')


FOLDER_LAYOUT = {'train_dataloader.dataset.ann_file': '', 'train_dataloader.dataset.data_prefix':
                 'train'}
# case: (task, damage, cfg-options, expected error)
CASES = {
    'truncated-jpeg': ('cls', truncate_an_image, {}, r'{path}: truncated: \d+ bytes'),
    'missing-image': ('det', remove_an_image, {}, r'{path}: missing'),
    'unknown-category': ('det', unknown_category, {}, r'{path}: 1 annotations \(ids \[\d+\]\) '
                         r'have category_id 99, which is not among the categories \[1, 2, 3, 4, '
                         r'5, 6\]'),
    'empty-annotations': ('det', no_annotations, {}, r'{path}: the annotation list is empty'),
    'ragged-folders': ('cls', ragged_folders, FOLDER_LAYOUT,
                       r"{path}: 1 files outside the class folders.*\n.*{path}: class folders do "
                       r"not match the 6 classes: missing \['ring'\], not a class \['hexagon'\]"),
    'unsorted-classes': ('cls', class_folders_only, FOLDER_LAYOUT,
                         r"{path}: the classes are not in sorted order: .* the images of cross/ "
                         r"would be 'square's"),
}


def damaged_copy(task, damage, demo_root, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(osp.join(demo_root, DATA[task]), data / DATA[task])
    return str(data), damage(str(data / DATA[task]))


@pytest.mark.parametrize('case', CASES)
def test_damaged_data_stops_before_training_naming_the_file(case, demo_root, tmp_path):
    task, damage, options, expected = CASES[case]
    data, path = damaged_copy(task, damage, demo_root, tmp_path)
    cfg, config = demo_cfg(task, data)
    cfg.merge_from_dict(options)
    with pytest.raises(DatasetError, match=expected.format(path=path)):
        prepare_cfg(cfg, config, work_dir=str(tmp_path / 'work'), command='train')


def test_a_label_map_beyond_the_classes_stops_training_naming_it(demo_root, tmp_path):
    """Label maps are not decoded before a run (check_dataset.py does that): the first batch that
    holds the damaged map stops the run with its name."""
    data, path = damaged_copy('seg', label_beyond_classes, demo_root, tmp_path)
    cfg = prepare_cfg(*demo_cfg('seg', data), work_dir=str(tmp_path / 'work'))
    cfg.merge_from_dict({'train_dataloader.batch_size': 6})  # every training image in batch 1
    with pytest.raises(DatasetError, match=rf'{path}: label values \[9\] \(after '
                                           r'reduce_zero_label, if set\) beyond the 7 classes'):
        Runner.from_cfg(cfg).train()


def test_check_dataset_reports_every_problem_of_every_split(demo_root, tmp_path, capsys):
    check = load_tool('tools/misc/check_dataset.py')
    clean = demo_cfg('seg', demo_root)[1]
    options = ['--cfg-options', *[f'{loader}.dataset.data_root={demo_root}/{DATA["seg"]}'
                                  for loader in ('train_dataloader', 'val_dataloader',
                                                 'test_dataloader')]]
    assert check.main([clean, *options]) == 0
    assert 'no problems found' in capsys.readouterr().out

    data, label_map = damaged_copy('seg', label_beyond_classes, demo_root, tmp_path)
    image = first_file(osp.join(data, DATA['seg'], 'images/validation'), '.jpg')
    os.remove(image)
    assert check.main([clean, *[o.replace(demo_root, data) for o in options]]) == 1
    out = capsys.readouterr().out
    assert f'{label_map}: label values [9] beyond the classes (0..6 for the 7 classes' in out
    assert f'{image}: missing' in out
    assert '2 problems in all' in out  # val_dataloader once: test_dataloader is the same
    assert 'task/s' in out  # mmengine's progress bar


@pytest.mark.parametrize('task', ['cls', 'det'])
def test_check_dataset_decodes_every_image(task, demo_root, tmp_path, capsys):
    """A JPEG whose end survives but whose middle is zeroed passes the quick check and fails
    decoding."""
    def corrupt(root):
        folder = 'train/circle' if task == 'cls' else 'train2017'
        path = first_file(osp.join(root, folder), '.JPEG' if task == 'cls' else '.jpg')
        data = bytearray(open(path, 'rb').read())
        data[2:len(data) - 2] = bytes(len(data) - 4)
        open(path, 'wb').write(bytes(data))
        return path
    data, path = damaged_copy(task, corrupt, demo_root, tmp_path)
    options = [f'train_dataloader.dataset.data_root={data}/{DATA[task]}']
    check = load_tool('tools/misc/check_dataset.py')
    config = osp.join(REPO, DEMOS['groupmixformer', task])
    assert check.main([config, '--splits', 'train_dataloader', '--quick', '--cfg-options',
                       *options]) == 0
    assert check.main([config, '--splits', 'train_dataloader', '--cfg-options', *options]) == 1
    assert f'{path}: cannot be decoded' in capsys.readouterr().out
