"""Shuffling options around the ones that must stay in place.

An option written ``fixed: true`` ("Tất cả các ý trên", "Cả A và B") keeps its
position when the others are shuffled: moved, it would point at options
that are no longer above it. An order here is a permutation given as an
array of indices into the options as written: ``order[k]`` is the option
shown at position k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def keep_fixed(fixed: Sequence[bool] | np.ndarray, free_order: Sequence[int] | np.ndarray) -> np.ndarray:
    """The full order when the free options take `free_order` among themselves.

    fixed: [options] bool, True = the option stays at its index.
    free_order: [free options] int, a permutation of 0 .. (number free) - 1:
        the j-th free position shows the free option ``free_order[j]``
        (counted among the free options, in written order).
    Returns order: [options] int, a permutation of 0 .. options - 1 with
    ``order[i] == i`` wherever ``fixed[i]``.

    The randomness is the caller's: forms draw `free_order` from their own
    reproducible stream (cbt.assembly), tests from a numpy Generator
    (`shuffle_keeping_fixed`).
    """
    fixed = np.asarray(fixed, dtype=bool)
    free = np.flatnonzero(~fixed)
    free_order = np.asarray(free_order, dtype=np.intp)
    if fixed.ndim != 1 or free_order.shape != free.shape:
        raise ValueError(f"free_order must have one entry per free option ({free.size}), not {free_order.shape}")
    if not np.array_equal(np.sort(free_order), np.arange(free.size)):
        raise ValueError(f"free_order must be a permutation of 0..{free.size - 1}, not {free_order.tolist()}")
    order = np.arange(fixed.size)
    order[free] = free[free_order]
    return order


def shuffle_keeping_fixed(fixed: Sequence[bool] | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random order of the options that leaves the fixed ones in place.

    fixed: [options] bool, True = stays at its index.
    Returns order: [options] int (see `keep_fixed`); every order of the free
    options is equally likely.
    """
    fixed = np.asarray(fixed, dtype=bool)
    return keep_fixed(fixed, rng.permutation(int(np.count_nonzero(~fixed))))
