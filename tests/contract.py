"""Contract checks against the official OCPI 2.2.1 OpenAPI files (ocpi/openapi-specification).

Any test may check what we serve or push:

    validate_ocpi(location_to_ocpi(location), "Location")      # one object (component schema)
    validate_envelope(body, "Location", many=True)              # an envelope around objects
    validate_response(body, "locations/sender-interface", "/locations", "get", 200)

Objects are first put through our wire codec (ocpi.jsonutil), so what is checked is exactly what a
partner receives (DateTimes as strings, Decimals as JSON numbers). A failure raises
`ContractError` (an AssertionError) listing every violation with its JSON path;
`contract_errors(...)` returns the list instead.

The YAML files reference each other with relative `$ref`s ("../../components/schema.yaml#/...");
each file is registered under its file:// URI in a `referencing.Registry`, so those resolve as
written. The schemas are OpenAPI 3.1, i.e. JSON Schema 2020-12.

Deliberate deviations from the files as published (each listed in ERRATA or GAP_FIXES, all
switched off with `release=True`):
- ERRATA: the files follow the 2021 release text; we follow the 2.2.1-d2 errata (PROTOCOL.md
  §5.2: Location.address 255 instead of 45, Location.state 45 instead of 20; SignedValue
  .plain_data 5000 instead of 512).
- GAP_FIXES: the envelope marks nothing required (the spec requires status_code and timestamp),
  and the latitude/longitude patterns are not anchored (so "x51.047599000" would pass).
- Formats: "date-time" is checked. By default it must be our output form (UTC, "Z", at most 3
  fractional digits: PROTOCOL.md §1.9); `lenient_datetime=True` accepts every form the spec allows
  as input (no designator, offsets), for checking partners' or the spec's own examples.
  "uri" must be an absolute URL.
"""

import os
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ocpi import jsonutil

_REPO = Path(__file__).resolve().parent.parent


def spec_dir() -> Path:
    """The folder holding openapi-2.2.1/ and examples-2.2.1/ (env OCPI_SPEC_DIR overrides)."""
    candidates = [
        os.environ.get("OCPI_SPEC_DIR"),
        _REPO / "spec" / "ocpi",
        _REPO.parent / "shared" / "ocpi",  # ../shared beside the clone, as in CI
    ]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if (path / "openapi-2.2.1").is_dir():
            return path
    raise RuntimeError("OCPI spec folder not found: set OCPI_SPEC_DIR (holding openapi-2.2.1/)")


def openapi_dir() -> Path:
    return spec_dir() / "openapi-2.2.1"


def examples_dir() -> Path:
    return spec_dir() / "examples-2.2.1"


class ContractError(AssertionError):
    """An object does not match the official schema."""


# (file, path to a schema inside the file, keyword, value, reason)
ERRATA = [
    ("modules/locations/schema.yaml", "Location/properties/address", "maxLength", 255,
     "2.2.1-d2 errata: address is string(255), the release said 45"),
    ("modules/locations/schema.yaml", "Location/properties/state", "maxLength", 45,
     "2.2.1-d2 errata: state is string(45), the release said 20"),
    ("modules/locations/schema.yaml", "LocationPatch/properties/address", "maxLength", 255,
     "2.2.1-d2 errata, as for Location"),
    ("modules/locations/schema.yaml", "LocationPatch/properties/state", "maxLength", 45,
     "2.2.1-d2 errata, as for Location"),
    ("modules/cdrs/schema.yaml", "SignedValue/properties/plain_data", "maxLength", 5000,
     "2.2.1-d2 errata: plain_data is string(5000), the release said 512"),
]  # fmt: skip
_LAT = r"^-?[0-9]{1,2}\.[0-9]{5,7}$"
_LON = r"^-?[0-9]{1,3}\.[0-9]{5,7}$"
GAP_FIXES = [
    ("components/schema.yaml", "OCPIResponse", "required", ["status_code", "timestamp"],
     "the spec requires status_code and timestamp in every response (PROTOCOL.md §1.3)"),
    ("modules/locations/schema.yaml", "GeoLocation/properties/latitude", "pattern", _LAT,
     "the published pattern is not anchored"),
    ("modules/locations/schema.yaml", "GeoLocation/properties/longitude", "pattern", _LON,
     "the published pattern is not anchored"),
    ("modules/locations/schema.yaml", "AdditionalGeoLocation/properties/latitude", "pattern",
     _LAT, "the published pattern is not anchored"),
    ("modules/locations/schema.yaml", "AdditionalGeoLocation/properties/longitude", "pattern",
     _LON, "the published pattern is not anchored"),
]  # fmt: skip

# Our output form (PROTOCOL.md §1.9), and everything the spec accepts on input.
OUTPUT_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
INPUT_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _uri(relative: str) -> str:
    return (openapi_dir() / relative).resolve().as_uri()


@cache
def _documents(release: bool) -> dict[str, dict]:
    """Every YAML file of the OpenAPI folder by its path relative to that folder, patched."""
    root = openapi_dir()
    docs = {
        path.relative_to(root).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*.yaml"))
    }
    if not release:
        for relative, where, keyword, value, _reason in ERRATA + GAP_FIXES:
            node = docs[relative]["components"]["schemas"]
            for part in where.split("/"):
                node = node[part]
            node[keyword] = value
    return docs


@cache
def _registry(release: bool) -> Registry:
    resources = [
        (_uri(relative), Resource(contents=doc, specification=DRAFT202012))
        for relative, doc in _documents(release).items()
    ]
    return Registry().with_resources(resources)


@cache
def _schema_files() -> dict[str, str]:
    """Component schema name → the file defining it (names are unique across the files)."""
    found: dict[str, str] = {}
    for relative, doc in _documents(True).items():
        for name in (doc.get("components") or {}).get("schemas") or {}:
            if name in found:
                raise RuntimeError(f"schema {name} defined in {found[name]} and {relative}")
            found[name] = relative
    return found


def schema_ref(name: str) -> str:
    """The absolute $ref of a component schema, e.g. schema_ref("Location")."""
    try:
        relative = _schema_files()[name]
    except KeyError:
        raise KeyError(f"no OCPI 2.2.1 schema named {name!r}") from None
    return f"{_uri(relative)}#/components/schemas/{name}"


def _format_checker(lenient_datetime: bool) -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    datetime_re = INPUT_DATETIME_RE if lenient_datetime else OUTPUT_DATETIME_RE

    @checker.checks("date-time")
    def is_ocpi_datetime(value: Any) -> bool:
        # OCPI DateTime: at most 25 characters (PROTOCOL.md §1.9).
        return not isinstance(value, str) or bool(datetime_re.match(value)) and len(value) <= 25

    @checker.checks("uri")
    def is_absolute_url(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value

    return checker


def _on_the_wire(obj: Any) -> Any:
    """What a partner would parse: our JSON encoding, read back with exact decimals."""
    return jsonutil.loads(jsonutil.dumps(obj))


def _errors(instance: Any, schema: dict, *, release: bool, lenient_datetime: bool) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        schema,
        registry=_registry(release),
        format_checker=_format_checker(lenient_datetime),
    )
    errors = sorted(validator.iter_errors(_on_the_wire(instance)), key=lambda e: list(e.path))
    return [f"{e.json_path}: {e.message}" for e in errors]


def contract_errors(
    obj: Any, name: str, *, release: bool = False, lenient_datetime: bool = False
) -> list[str]:
    """Every violation of the named OCPI schema by `obj` (empty list = valid)."""
    return _errors(
        obj, {"$ref": schema_ref(name)}, release=release, lenient_datetime=lenient_datetime
    )


def _raise(errors: list[str], what: str) -> None:
    if errors:
        raise ContractError(f"{what} violates the OCPI 2.2.1 schema:\n  " + "\n  ".join(errors))


def validate_ocpi(
    obj: Any, name: str, *, release: bool = False, lenient_datetime: bool = False
) -> None:
    """Raise ContractError unless `obj` is a valid OCPI 2.2.1 `name` (e.g. "Location", "EVSE")."""
    _raise(contract_errors(obj, name, release=release, lenient_datetime=lenient_datetime), name)


def validate_envelope(
    body: Any, name: str | None = None, *, many: bool = False, release: bool = False
) -> None:
    """Raise ContractError unless `body` is a response envelope (PROTOCOL.md §1.3) whose data,
    when `name` is given, is one `name` object or (many=True) a list of them."""
    schema: dict[str, Any] = {"$ref": schema_ref("OCPIResponse")}
    if name is not None:
        data = {"$ref": schema_ref(name)}
        if many:
            data = {"type": "array", "items": data}
        schema = {"allOf": [schema, {"properties": {"data": data}, "required": ["data"]}]}
    _raise(_errors(body, schema, release=release, lenient_datetime=False), "envelope")


def validate_response(
    body: Any,
    interface: str,
    path: str,
    method: str,
    status: int,
    *,
    release: bool = False,
) -> None:
    """Raise ContractError unless `body` matches the response the OpenAPI file describes for
    `method path` with HTTP `status`, e.g. ("locations/sender-interface", "/locations", "get",
    200). The interface file is named relative to modules/, without ".yaml"."""
    relative = f"modules/{interface}.yaml"
    doc = _documents(release)[relative]
    try:
        response = doc["paths"][path][method.lower()]["responses"][str(status)]
    except KeyError:
        raise KeyError(f"{relative} describes no {status} response to {method} {path}") from None
    if "$ref" in response:
        # A shared response object ("../../components/schema.yaml#/components/responses/…").
        target = urljoin(_uri(relative), response["$ref"])
    else:
        pointer = "/".join(["", "paths", _escape(path), method.lower(), "responses", str(status)])
        target = f"{_uri(relative)}#{quote(pointer, safe='/~')}"
    schema = {"$ref": target + "/content/application~1json/schema"}
    _raise(_errors(body, schema, release=release, lenient_datetime=False), f"{method} {path}")


def _escape(token: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
