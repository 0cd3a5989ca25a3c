from typing import IO, Any, Optional, Tuple

__all__ = ["asizeof", "asizesof", "basicsize", "itemsize", "flatsize"]

def asizeof(
    *objs: Any,
    all: Optional[bool] = ...,
    align: int = ...,
    limit: Optional[int] = ...,
    code: bool = ...,
    frames: bool = ...,
    ignored: bool = ...,
    derive: bool = ...,
    infer: bool = ...,
    stats: float = ...,
    above: int = ...,
    clip: int = ...,
    cutoff: int = ...,
    detail: int = ...,
    stream: Optional[IO[str]] = ...,
) -> int: ...
def asizesof(
    *objs: Any,
    align: int = ...,
    limit: Optional[int] = ...,
    code: bool = ...,
    frames: bool = ...,
    ignored: bool = ...,
    derive: bool = ...,
    infer: bool = ...,
    stats: float = ...,
    above: int = ...,
    clip: int = ...,
    cutoff: int = ...,
    detail: int = ...,
    stream: Optional[IO[str]] = ...,
) -> Tuple[int, ...]: ...
def basicsize(obj: Any, *, derive: bool = ..., infer: bool = ..., save: bool = ...) -> int: ...
def itemsize(obj: Any, *, derive: bool = ..., infer: bool = ..., save: bool = ...) -> int: ...
def flatsize(obj: Any, align: int = ..., *, derive: bool = ..., infer: bool = ..., save: bool = ...) -> int: ...
