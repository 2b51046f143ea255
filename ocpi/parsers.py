"""Request body parsing that keeps numbers exact (Decimal)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from . import jsonutil


class OCPIJSONParser(BaseParser):
    # Lenient on Content-Type: some partners omit it or send text/plain; the body decides.
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            return jsonutil.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"Malformed JSON body: {exc}") from exc
        except RecursionError as exc:  # e.g. 100,000 nested brackets
            raise ParseError("Malformed JSON body: nested too deeply") from exc
