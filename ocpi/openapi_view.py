"""GET /ocpi/openapi.json: an OpenAPI 3.1 description of the OCPI endpoints we serve.

Assembled, not hand-kept: for every 2.2.1 endpoint we advertise (ocpi.versions.ENDPOINTS) it
takes that module's interface from the official OCPI OpenAPI files (spec/ocpi/openapi-2.2.1,
EV Roaming Foundation: SENDER → sender-interface.yaml, RECEIVER → receiver-interface.yaml),
moves its paths under our URLs (`/tokens/{country_code}/…` → `/ocpi/cpo/2.2.1/tokens/{…}`) and
bundles the schemas, parameters, responses and headers they reference into one document (the
files' relative `$ref`s become `#/components/…`). Versions and version details come from the
versions interface. A module added to ENDPOINTS appears here with no further work; the server
URL is OCPI_BASE_URL.

Served without authentication (it is documentation, the same for every partner) and not in the
envelope (it is not an OCPI response). The fuzz tests (tests/ocpi/test_fuzz.py) run from it.
"""

import json
import posixpath
from functools import cache
from pathlib import Path

import yaml
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .middleware import envelope_response
from .versions import ENDPOINTS, AdvertisedEndpoint

VERSION = "2.2.1"
#: The official files we draw from (spec/README.md says where they come from).
SOURCE = "ocpi/openapi-specification, commit 89baa84, folder ocpi/2.2.1 (EV Roaming Foundation)"


def spec_dir() -> Path:
    return Path(settings.BASE_DIR) / "spec" / "ocpi" / f"openapi-{VERSION}"


def interface_file(endpoint: AdvertisedEndpoint) -> str:
    """The official file describing what we serve for one advertised endpoint."""
    if endpoint.identifier == "credentials":
        return "modules/credentials/interface.yaml"
    return f"modules/{endpoint.identifier}/{endpoint.role.lower()}-interface.yaml"


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: an unquoted `2019-01-01T00:00:00Z` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Bundler:
    """Rewrites relative `$ref`s of the official files into one document's components."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, dict] = {}
        self.components: dict[str, dict] = {}
        self.names: dict[tuple[str, str, str], str] = {}

    def load(self, relative: str) -> dict:
        if relative not in self.files:
            text = (self.root / relative).read_text(encoding="utf-8")
            self.files[relative] = yaml.load(text, Loader=_Loader)  # noqa: S506 - safe
        return self.files[relative]

    def rewrite(self, node, current: str):
        """`node` (from file `current`) with every $ref pointing into this document."""
        if isinstance(node, dict):
            return {
                key: self.ref(value, current) if key == "$ref" else self.rewrite(value, current)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self.rewrite(item, current) for item in node]
        return node

    def ref(self, ref: str, current: str) -> str:
        file_part, _, pointer = ref.partition("#")
        target = (
            posixpath.normpath(posixpath.join(posixpath.dirname(current), file_part))
            if file_part
            else current
        )
        parts = pointer.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "components":
            raise ValueError(f"Unexpected $ref {ref!r} in {current}")
        _, kind, name = parts
        key = (target, kind, name)
        if key not in self.names:
            taken = self.components.setdefault(kind, {})
            # Same name in two files (none in 2.2.1 so far): the second is prefixed by module.
            chosen = (
                name
                if name not in taken
                else f"{posixpath.basename(posixpath.dirname(target))}_{name}"
            )
            self.names[key] = chosen
            taken[chosen] = {}  # reserved first: a schema may refer to itself
            taken[chosen] = self.rewrite(self.load(target)["components"][kind][name], target)
        return f"#/components/{kind}/{self.names[key]}"


def _add_paths(bundler: _Bundler, paths: dict, relative: str, rename) -> None:
    """Copy the paths of one file that `rename` maps to one of our paths (None: skip)."""
    for path, item in bundler.load(relative).get("paths", {}).items():
        ours = rename(path)
        if ours is not None:
            paths[ours] = bundler.rewrite(item, relative)


def _under(prefix_from: str, prefix_to: str):
    def rename(path: str) -> str | None:
        if path == prefix_from or path.startswith(prefix_from + "/"):
            return prefix_to + path[len(prefix_from) :]
        return None

    return rename


@cache
def openapi_document(base_url: str, endpoints: tuple[AdvertisedEndpoint, ...]) -> dict:
    """The document for a server at `base_url` serving `endpoints` (cached per both)."""
    bundler = _Bundler(spec_dir())
    paths: dict[str, dict] = {}
    ours = {"/versions": "/ocpi/versions", f"/versions/{VERSION}": f"/ocpi/{VERSION}"}
    _add_paths(bundler, paths, "modules/versions/interface.yaml", ours.get)
    for endpoint in endpoints:
        if endpoint.version == VERSION:
            rename = _under(f"/{endpoint.identifier}", f"/ocpi/{endpoint.path}")
            _add_paths(bundler, paths, interface_file(endpoint), rename)
    components = {kind: dict(sorted(items.items())) for kind, items in bundler.components.items()}
    components["securitySchemes"] = bundler.load("components/schema.yaml")["components"][
        "securitySchemes"
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.OCPI_BUSINESS_NAME}: OCPI {VERSION} CPO interface",
            "version": VERSION,
            "description": (
                "The OCPI endpoints this platform serves, assembled from the official OCPI "
                f"OpenAPI descriptions ({SOURCE}) with our URLs. Every call needs "
                "`Authorization: Token <base64 of the credentials token>`; every answer is an "
                "OCPI envelope."
            ),
            "license": {"name": "OCPI", "url": "https://evroaming.org/ocpi-license/"},
        },
        "servers": [{"url": base_url}],
        "security": [{"OCPIToken": []}],
        "paths": dict(sorted(paths.items())),
        "components": components,
    }


@csrf_exempt
def openapi_view(request):
    """GET (or HEAD) the document; any other method is a 405 in the envelope."""
    if request.method not in ("GET", "HEAD"):
        return envelope_response(2000, 405, f"Method {request.method} not allowed")
    document = openapi_document(settings.OCPI_BASE_URL, ENDPOINTS)
    return HttpResponse(json.dumps(document, ensure_ascii=False), content_type="application/json")
