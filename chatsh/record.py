"""Small value types that cost nothing to define.

``dataclasses`` takes about 25 ms to import and 1 ms a class, paid at every start of a
script; a :class:`Record` subclass names its fields in ``__slots__`` and writes its
``__init__``, and gets equality, hashing and a readable ``repr`` from here.
"""

from __future__ import annotations

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import Self


class Record:
    """Equal when of the same type with equal fields (its ``__slots__``)."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def replaced(self, **changes: object) -> Self:
        """A copy with the fields named changed."""
        unknown = sorted(set(changes) - set(self.__slots__))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(unknown)}")
        copy = object.__new__(type(self))
        for name in self.__slots__:
            setattr(copy, name, changes.get(name, getattr(self, name)))
        return copy

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"
