"""Cost-model parameters: YAML files where every number carries its source, validated into
typed objects; errors name the file, the key and what is allowed. The cost files and the
shipped calibration profiles are package data (gatesim/costs/data, gatesim/costs/profiles),
so an installed wheel finds them; a user's own files are given by path."""
from __future__ import annotations

import functools
import json
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gatesim.errors import GatesimError

COSTS_DIR = Path(str(files("gatesim.costs") / "data"))  # <target>.yaml
PROFILES_DIR = Path(str(files("gatesim.costs") / "profiles"))  # <name>.json, shipped profiles
SCHEMA_VERSION = 1

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    # inf and NaN are never a cost, a size or a setting (`--clock-mhz inf` gave energy "xnan")
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Sourced(Strict):
    """One number of a cost model and where it comes from."""

    value: float = Field(gt=0, strict=True)  # a quoted or mistyped number is an error, not a guess
    source: str = Field(min_length=3)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{key}: {err['msg']}{shown}")
    return "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more" if len(parts) > 4 else "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML whose mappings may not repeat a key (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    repeated = next((k for k in keys if keys.count(k) > 1), None)
    if repeated is not None:
        raise json.JSONDecodeError(f"duplicate key {repeated!r}", "", 0)
    return dict(pairs)


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML or JSON file that must hold a mapping; a key given twice is an error."""
    if not path.is_file():
        raise GatesimError(f"{path}: no such file")
    try:
        text = path.read_text()
        data = (json.loads(text, object_pairs_hook=_unique_pairs) if path.suffix == ".json"
                else yaml.load(text, Loader=_UniqueKeyLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise GatesimError(f"{path}: not valid YAML: {where}{exc.problem}") from exc
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GatesimError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise GatesimError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def validated(model: type[Model], data: dict[str, Any], path: Path | str) -> Model:
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise GatesimError(f"{path}: schema_version {version!r}; this gatesim reads version "
                           f"{SCHEMA_VERSION} (re-create the file with this version)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise GatesimError(f"{path}: {_describe(exc)}") from exc


def parameters(model: type[Model], target: str, params: dict[str, Any]) -> Model:
    """A cost model's keyword parameters, validated; errors name the target and the value."""
    try:
        return model(**params)
    except ValidationError as exc:
        raise GatesimError(f"{target}: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in exc.errors())) from exc


def load_file(model: type[Model], path: Path | str) -> Model:
    """A YAML/JSON file as a validated `model`, parsed once per file version: a sweep
    estimates thousands of points from the same few files."""
    path = Path(path)
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # read_mapping names the missing file
    return _load_file(model, path, version)


@functools.lru_cache(maxsize=64)
def _load_file(model: type[Model], path: Path, version: tuple[int, int] | None) -> Model:
    return validated(model, read_mapping(path), path)


def load(model: type[Model], name: str, path: Path | None = None) -> Model:
    """The shipped cost file <name>.yaml (or `path`) as a validated `model`."""
    return load_file(model, path or COSTS_DIR / f"{name}.yaml")


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def resolve_profile(value: Any) -> Any:
    """A profile file by path, or a shipped profile by name (e.g. `cpu-vm`, the machine the
    committed figures come from). A path that exists wins; otherwise a name is looked up."""
    if value is None or not isinstance(value, (str, Path)):
        return value
    path = Path(value)
    if path.exists() or path.parent != Path("."):
        return path
    shipped = PROFILES_DIR / f"{path.stem}.json"
    if path.suffix in ("", ".json") and shipped.is_file():
        return shipped
    raise ValueError(f"{value}: no such file, and no shipped profile of that name (shipped: "
                     f"{', '.join(shipped_profiles())})")


# A cost model's `profile` parameter: a path, or the name of a shipped profile.
ProfilePath = Annotated[Path, BeforeValidator(resolve_profile)]
