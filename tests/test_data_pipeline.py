"""The training pipeline (mindspore.dataset): the same file becomes the same tensor in training (augmentation
off) and evaluation, channels are RGB, augmentation is keyed by (seed, epoch, index), RecordIO samples flow
through the same source, and unreadable images are skipped, logged and counted until the limit stops the run."""

import logging
import os

import cv2
import numpy as np
import pytest

from src.data.dataset import FaceSource, TooManyBadImages, create_train_dataset, prepare_image
from src.data.image_io import load_rgb, to_input
from src.data.readers import read_training_list
from src.data.samples import Sample
from tests.face_data import (
    LFW_IMAGES,
    face_landmarks,
    lfw_landmarks,
    random_image,
    write_corrupt_jpeg,
    write_face_rec,
    write_image,
)

SIZE = (112, 96)


def batches(dataset):
    return [(image.asnumpy(), label.asnumpy()) for image, label in dataset.create_tuple_iterator(num_epochs=1)]


def generated_samples(folder, count, rng, landmarks=True):
    samples = []
    for index in range(count):
        path = os.path.join(folder, f"id{index}", "0001.png")
        write_image(path, random_image(rng, 150, 150))
        points = face_landmarks(SIZE, scale=1.2, shift=(10.0 + index, 5.0)) if landmarks else None
        samples.append(Sample(path, index, points, index + 1))
    return samples


def assert_training_equals_evaluation(samples):
    dataset, _, _ = create_train_dataset(samples, SIZE, batch_size=len(samples), random_flip=False, num_workers=1)
    ((images, labels),) = batches(dataset)
    assert images.shape == (len(samples), 3) + SIZE and images.dtype == np.float32
    for image, label in zip(images, labels):
        sample = samples[int(label)]
        expected = to_input(prepare_image(load_rgb(sample.path), sample.landmarks, SIZE))
        np.testing.assert_array_equal(image, expected)


def test_training_and_evaluation_give_the_same_tensor_real_lfw():
    table = lfw_landmarks()
    relpaths = sorted(table)[:6]
    assert_training_equals_evaluation(
        [Sample(os.path.join(LFW_IMAGES, p), i, table[p]) for i, p in enumerate(relpaths)]
    )


def test_training_and_evaluation_give_the_same_tensor_generated(tmp_path):
    rng = np.random.default_rng(0)
    assert_training_equals_evaluation(
        generated_samples(str(tmp_path), 4, rng)
        + [s._replace(label=4 + s.label) for s in generated_samples(str(tmp_path / "raw"), 2, rng, landmarks=False)]
    )


def test_channel_order_is_rgb(tmp_path):
    path = str(tmp_path / "red.png")
    assert cv2.imwrite(path, np.full((112, 96, 3), (0, 0, 255), np.uint8))  # BGR on disk: pure red
    dataset, _, _ = create_train_dataset([Sample(path, 0, None)] * 2, SIZE, 2, random_flip=False, num_workers=1)
    ((images, _),) = batches(dataset)
    np.testing.assert_array_equal(images[0, :, 0, 0], [(255 - 127.5) / 128, -127.5 / 128, -127.5 / 128])


def test_flip_and_jitter_are_keyed_by_seed_epoch_index(tmp_path):
    samples = generated_samples(str(tmp_path), 3, np.random.default_rng(1))
    source = FaceSource(samples, SIZE, seed=5, random_flip=True, align_jitter=2)
    draws = [source.augmentation(epoch, index) for epoch in range(40) for index in range(3)]
    assert draws == [
        FaceSource(samples, SIZE, seed=5, random_flip=True, align_jitter=2).augmentation(e, i)
        for e in range(40)
        for i in range(3)
    ]
    flips, tops, lefts = zip(*draws)
    assert set(flips) == {True, False} and set(tops) == set(lefts) == {0, 1, 2, 3, 4}
    key = 7 * len(samples) + 1  # epoch 7, sample 1
    image, label = source.image(key)
    flip, top, left = source.augmentation(7, 1)
    window = prepare_image(load_rgb(samples[1].path), samples[1].landmarks, SIZE, pad=2)[
        top : top + 112, left : left + 96
    ]
    np.testing.assert_array_equal(image, window[:, ::-1] if flip else window)
    assert label == 1 and image.shape == SIZE + (3,)
    np.testing.assert_array_equal(source.image(key)[0], image)
    np.testing.assert_array_equal(source[key][0], to_input(image))
    plain = FaceSource(samples, SIZE, random_flip=False)
    assert plain.augmentation(7, 1) == (False, 0, 0)


def test_recordio_samples_through_the_pipeline(tmp_path):
    rng = np.random.default_rng(2)
    images = [(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), label) for label in (0, 0, 1, 1)]
    encoded = [(cv2.imencode(".png", cv2.cvtColor(im, cv2.COLOR_RGB2BGR))[1].tobytes(), label) for im, label in images]
    rec = str(tmp_path / "train.rec")
    write_face_rec(rec, encoded, (112, 112))
    samples = read_training_list(rec, "recordio").samples
    dataset, _, _ = create_train_dataset(samples, (112, 112), 4, random_flip=False, num_workers=2)
    ((batch, labels),) = batches(dataset)
    expected = [to_input(image) for image, _ in images]
    found = [next(i for i, e in enumerate(expected) if np.array_equal(e, image)) for image in batch]
    assert sorted(found) == [0, 1, 2, 3]  # every record once (shuffled), decoded exactly
    assert [int(label) for label in labels] == [images[i][1] for i in found]


def test_unreadable_image_is_skipped_logged_and_counted(tmp_path, caplog):
    samples = generated_samples(str(tmp_path), 6, np.random.default_rng(3))
    bad = str(tmp_path / "id9" / "broken.jpg")
    write_corrupt_jpeg(bad)
    samples[2] = samples[2]._replace(path=bad)
    source = FaceSource(samples, SIZE, random_flip=False, max_bad_fraction=0.001)
    with caplog.at_level(logging.WARNING):
        image, label = source.image(2)
    assert label == 3  # replaced by the next readable sample
    np.testing.assert_array_equal(image, prepare_image(load_rgb(samples[3].path), samples[3].landmarks, SIZE))
    assert source.bad_paths == [bad] and source.skips == 1
    assert f"skipped unusable image {bad}" in caplog.text
    source[len(samples) + 2]  # the next epoch meets it again: one more skip, still one bad image
    assert source.bad_paths == [bad] and source.skips == 2


def test_too_many_unreadable_images_stop_the_run(tmp_path):
    samples = generated_samples(str(tmp_path), 8, np.random.default_rng(4))
    for index in (1, 5):
        bad = str(tmp_path / f"bad{index}.jpg")
        write_corrupt_jpeg(bad)
        samples[index] = samples[index]._replace(path=bad)
    source = FaceSource(samples, SIZE, max_bad_fraction=0.2)  # 2 of 8 > 0.2 * 8
    source[1]
    with pytest.raises(TooManyBadImages, match=r"2 of 8 images could not be read \(limit: max_bad_fraction=0.2\)"):
        source[5]
    assert FaceSource(samples, SIZE, max_bad_fraction=0.25)[5][1] == 6  # 2 of 8 is within 0.25
    dataset, _, _ = create_train_dataset(samples, SIZE, 4, num_workers=1, max_bad_fraction=0.1, total_steps=2)
    with pytest.raises(RuntimeError, match="images could not be read"):
        batches(dataset)
