"""An immutable mapping whose next version shares all but the parts that changed.

The reducer returns a new state for every event, and every probe result changes one check's
record: with the check table a plain dict, each step copied all of it (10,000 checks: 50 us a
step, more than the rest of the step). `ChunkedMap` keeps its entries in about sqrt(N) chunks
of consecutive keys; a step edits it through a `ChunkedEditor`, which copies only the chunks it
writes to, so a step that changes one record copies one chunk and a tuple of sqrt(N) pointers.
Iteration is in insertion order, as a dict's. Adding or removing a key (a reload) rebuilds it.
"""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, Sequence, ValuesView
from itertools import chain
from typing import Generic, TypeVar, overload

__all__ = ["ChunkedEditor", "ChunkedMap"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class _Items(ItemsView[K, V]):
    """Items straight from the chunks, iterated in C (the default looks every key up again)."""

    _mapping: _Chunks[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return chain.from_iterable(map(dict.items, self._mapping._chunks))


class _Values(ValuesView[V]):
    _mapping: _Chunks[object, V]

    def __iter__(self) -> Iterator[V]:
        return chain.from_iterable(map(dict.values, self._mapping._chunks))


class _Chunks(Mapping[K, V], Generic[K, V]):
    """The reads both the map and its editor make: a key's chunk, then the key in it."""

    __slots__ = ()
    _chunks: Sequence[dict[K, V]]  # consecutive runs of the keys, in insertion order
    _where: Mapping[K, int]  # key -> its chunk
    _size: int

    def __getitem__(self, key: K) -> V:
        return self._chunks[self._where[key]][key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        index = self._where.get(key)
        return default if index is None else self._chunks[index][key]

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __iter__(self) -> Iterator[K]:
        return chain.from_iterable(self._chunks)

    def __len__(self) -> int:
        return self._size

    def items(self) -> _Items[K, V]:
        return _Items(self)

    def values(self) -> _Values[V]:
        return _Values(self)


class ChunkedMap(_Chunks[K, V]):
    __slots__ = ("_chunks", "_size", "_where")

    def __init__(self, chunks: tuple[dict[K, V], ...], where: Mapping[K, int], size: int) -> None:
        self._chunks: tuple[dict[K, V], ...] = chunks
        self._where = where  # shared by every version with the same keys
        self._size = size

    @classmethod
    def of(cls, items: Mapping[K, V]) -> ChunkedMap[K, V]:
        if isinstance(items, ChunkedMap):
            return items
        size = len(items)
        per_chunk = max(1, math.isqrt(size))
        chunks: list[dict[K, V]] = []
        where: dict[K, int] = {}
        for key, value in items.items():
            if not chunks or len(chunks[-1]) >= per_chunk:
                chunks.append({})
            chunks[-1][key] = value
            where[key] = len(chunks) - 1
        return cls(tuple(chunks), where, size)

    def __repr__(self) -> str:
        return f"ChunkedMap({dict(self.items())!r})"

    def editor(self) -> ChunkedEditor[K, V]:
        return ChunkedEditor(self)


class ChunkedEditor(_Chunks[K, V], MutableMapping[K, V]):
    """One step's changes to a `ChunkedMap`: copy-on-write per chunk; `freeze` makes the next
    version. A key added or removed gathers everything into one chunk of its own (rebuilt
    into chunks at `freeze`)."""

    __slots__ = ("_base", "_chunks", "_copied", "_rebuilt", "_size", "_where")

    def __init__(self, base: ChunkedMap[K, V]) -> None:
        self._base = base
        self._chunks: list[dict[K, V]] = list(base._chunks)
        self._where: Mapping[K, int] = base._where
        self._size = base._size
        self._copied: set[int] = set()
        self._rebuilt: dict[K, int] | None = None  # this editor's own key index, once rebuilt

    def __setitem__(self, key: K, value: V) -> None:
        index = self._where.get(key)
        if index is None:
            self._rebuild()[key] = 0
            self._chunks[0][key] = value
            self._size += 1
            return
        if index not in self._copied:
            self._chunks[index] = dict(self._chunks[index])
            self._copied.add(index)
        self._chunks[index][key] = value

    def __delitem__(self, key: K) -> None:
        where = self._rebuild()
        del where[key]
        del self._chunks[0][key]
        self._size -= 1

    def _rebuild(self) -> dict[K, int]:
        """One chunk of its own with every entry, and an index of its own."""
        if self._rebuilt is None:
            flat = {key: value for chunk in self._chunks for key, value in chunk.items()}
            self._chunks = [flat]
            self._copied = {0}
            self._rebuilt = dict.fromkeys(flat, 0)
            self._where = self._rebuilt
        return self._rebuilt

    def freeze(self) -> ChunkedMap[K, V]:
        if self._rebuilt is not None:
            return ChunkedMap.of(self._chunks[0])
        if not self._copied:
            return self._base
        return ChunkedMap(tuple(self._chunks), self._where, self._size)
