import os
from typing import Any, Dict, Optional, Union

__all__ = ["write_report", "render_report", "load_run"]

_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

RUN_FILE: str

def load_run(rundir: _Path) -> Dict[str, Any]: ...
def render_report(rundir: _Path, run: Optional[Dict[str, Any]] = ..., out_dir: Optional[str] = ...) -> str: ...
def write_report(rundir: _Path, out_path: Optional[_Path] = ...) -> str: ...
