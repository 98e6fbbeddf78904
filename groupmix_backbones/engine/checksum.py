"""Checksums beside checkpoints: ``NAME.sha256`` holds the sha256 of NAME's bytes in
``sha256sum``'s format (``sha256sum -c NAME.sha256`` checks it), written when NAME is saved, so
that a checkpoint damaged afterwards (a node crash during a page-cache flush, a bad disk, a cut
copy) is found before it is loaded, and resume can take the newest intact one instead."""
import glob
import hashlib
import os
import os.path as osp

from mmengine.logging import print_log

from ..safe_checkpoint import CorruptCheckpointError

SUFFIX = '.sha256'


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def checksum_line(path: str, name: str) -> str:
    """The ``.sha256`` text of the file ``path``, to be renamed ``name`` (sha256sum's format)."""
    return f'{sha256_of(path)}  {osp.basename(name)}\n'


def damage(path: str):
    """Why the checkpoint ``path`` is not what was saved (a sentence), or None when its bytes
    match ``path.sha256``; None too when it has no checksum (saved elsewhere or before checksums
    were written): nothing to check against."""
    if not osp.isfile(path + SUFFIX):
        return None
    try:
        expected = open(path + SUFFIX).read().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return f'its checksum file {path + SUFFIX} is unreadable'
    if not osp.isfile(path):
        return 'it is missing'
    actual = sha256_of(path)
    if actual != expected:
        return (f'its sha256 {actual[:16]}... ({osp.getsize(path)} bytes) is not the '
                f'{expected[:16]}... recorded in {path + SUFFIX} when it was saved: it was '
                'truncated or damaged after it was written')
    return None


def verify_checkpoint(path: str):
    """Raise :class:`CorruptCheckpointError` if the local checkpoint ``path`` does not match its
    checksum."""
    why = damage(path)
    if why:
        raise CorruptCheckpointError(f'Checkpoint {path} is damaged: {why}.')


def checkpoints_newest_first(work_dir: str):
    """The checkpoints in ``work_dir`` that have a checksum, most recently written first."""
    found = [path[:-len(SUFFIX)]
             for path in glob.glob(osp.join(glob.escape(work_dir), '*.pth' + SUFFIX))]
    return sorted((path for path in found if osp.isfile(path)),
                  key=lambda path: (osp.getmtime(path + SUFFIX), path), reverse=True)


def newest_intact_checkpoint(work_dir: str):
    """The checkpoint to resume from: the one ``last_checkpoint`` names if it is intact, else the
    newest intact one in ``work_dir`` (saying which file was damaged and which is taken instead);
    None when there is none."""
    record = osp.join(work_dir, 'last_checkpoint')
    named = open(record).read().strip() if osp.isfile(record) else None
    damaged = []
    for path in ([named] if named else []) + checkpoints_newest_first(work_dir):
        if path in (d for d, _ in damaged):
            continue
        why = damage(path) if osp.isfile(path) or osp.isfile(path + SUFFIX) else 'it is missing'
        if why is None:
            if damaged:  # printed: before the Runner exists, the current logger is another's
                print_log('; '.join(f'Checkpoint {d} is damaged: {w}' for d, w in damaged)
                          + f'. Resuming from {path}, the newest intact checkpoint, instead.')
            return path
        damaged.append((path, why))
    if damaged:
        raise CorruptCheckpointError(
            'No intact checkpoint to resume from in {}: {}.'.format(
                work_dir, '; '.join(f'{d} is damaged: {w}' for d, w in damaged)))
    return None


def remove_with_checksum(path: str):
    """Remove the checkpoint ``path`` and its checksum file."""
    for file in (path, path + SUFFIX):
        if osp.isfile(file):
            os.remove(file)
