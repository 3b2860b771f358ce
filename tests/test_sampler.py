"""ShardedStreamSampler: disjoint equal shards of one (seed, epoch) permutation, determinism, and a resumed
stream equal to the tail of an uninterrupted one."""

import numpy as np
import pytest

from src.data.sampler import ShardedStreamSampler, epoch_permutation, steps_per_epoch

N, BATCH, RANKS = 103, 5, 4


def stream(sampler):
    return list(sampler)


def test_shards_are_disjoint_positions_of_one_permutation():
    full = [ShardedStreamSampler(N, 1, RANKS, rank, seed=3) for rank in range(RANKS)]
    shards = [s.shard_indices(epoch=2) for s in full]
    per_shard = -(-N // RANKS)
    assert [len(s) for s in shards] == [per_shard] * RANKS
    padded = np.resize(epoch_permutation(N, 3, 2), per_shard * RANKS)
    for rank, shard in enumerate(shards):
        np.testing.assert_array_equal(shard, padded[rank::RANKS])
    together = np.concatenate(shards)
    assert set(together.tolist()) == set(range(N))
    assert len(together) - len(set(together.tolist())) == per_shard * RANKS - N  # only the padding repeats


def test_every_rank_gets_the_same_number_of_whole_batches():
    samplers = [ShardedStreamSampler(N, BATCH, RANKS, rank, seed=3, total_steps=12) for rank in range(RANKS)]
    counts = [len(stream(s)) for s in samplers]
    assert counts == [12 * BATCH] * RANKS == [len(s) for s in samplers]
    assert samplers[0].steps_per_epoch == steps_per_epoch(N, BATCH, RANKS) == 5
    first_epoch = [set(stream(s)[: 5 * BATCH]) for s in samplers]
    for a in range(RANKS):
        for b in range(a + 1, RANKS):
            assert not first_epoch[a] & first_epoch[b]


def test_keys_carry_the_epoch_and_depend_only_on_seed_and_epoch():
    sampler = ShardedStreamSampler(N, BATCH, RANKS, 1, seed=7, total_steps=15)
    keys = np.array(stream(sampler))
    np.testing.assert_array_equal(keys // N, np.repeat([0, 1, 2], 5 * BATCH))
    again = np.array(stream(ShardedStreamSampler(N, BATCH, RANKS, 1, seed=7, total_steps=15)))
    np.testing.assert_array_equal(keys, again)
    other_seed = np.array(stream(ShardedStreamSampler(N, BATCH, RANKS, 1, seed=8, total_steps=15)))
    assert not np.array_equal(keys, other_seed)
    epochs = keys.reshape(3, -1) % N
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(epochs[1], sampler.shard_indices(1))


@pytest.mark.parametrize("start_step", [0, 3, 5, 7, 14])
def test_resume_from_step_is_the_tail_of_the_uninterrupted_stream(start_step):
    whole = stream(ShardedStreamSampler(N, BATCH, RANKS, 2, seed=1, total_steps=14 + 1))
    resumed = stream(ShardedStreamSampler(N, BATCH, RANKS, 2, seed=1, start_step=start_step, total_steps=15))
    assert resumed == whole[start_step * BATCH :]


def test_unshuffled_and_invalid_arguments():
    sampler = ShardedStreamSampler(10, 2, 2, 1, shuffle=False)
    assert stream(sampler) == [1, 3, 5, 7]
    with pytest.raises(ValueError, match="shard_id 2 is outside 0..1"):
        ShardedStreamSampler(10, 2, 2, 2)
    with pytest.raises(ValueError, match="start step 9 is beyond the last step 4"):
        ShardedStreamSampler(10, 2, 2, 0, start_step=9, total_steps=4)
    with pytest.raises(ValueError, match="fewer than one batch of 8 per shard"):
        ShardedStreamSampler(10, 8, 2, 0)
