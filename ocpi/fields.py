"""DRF fields for the OCPI types we read from partners (PROTOCOL.md §1.9), and `without_nulls`.

Every module's input serializers take their fields from here. Optional fields may be absent or
null (§10.23): pass `**OPTIONAL`, and drop the nulls from the validated data with
`without_nulls()`.
"""

import re

from django.core.validators import RegexValidator
from rest_framework import serializers

from .datetimes import parse_datetime

#: CiString: printable ASCII (PROTOCOL.md §1.9).
PRINTABLE_ASCII = r"\A[\x20-\x7e]*\Z"
_PRINTABLE_ASCII = re.compile(PRINTABLE_ASCII)
#: The Credentials `token`: printable non-whitespace ASCII, U+0021..U+007E (§3.1).
TOKEN_PATTERN = r"\A[\x21-\x7e]{1,64}\Z"
CI_STRING_MESSAGE = "Must be printable ASCII (CiString)."

#: An optional field: absent or null. Passed as arguments, since DRF re-creates declared fields
#: from their arguments for each serializer instance.
OPTIONAL = {"required": False, "allow_null": True}


def without_nulls(value):
    """`value` without the null (None) members of its objects, at any depth (lists included):
    an optional field sent as null is treated as absent."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class StringField(serializers.CharField):
    """An OCPI string(n) or, with `ascii_only`, a CiString(n).

    `strict` (the default, for the objects partners own: tokens): a JSON string, taken as sent
    (no number silently becomes an id; " 123" is not "123"), and a non-ASCII CiString is refused
    before its length is checked. `strict=False` (the commands, see `ci_string`): DRF's CharField
    habits, a number becomes a string and surrounding white space is trimmed, and the ASCII rule is
    a validator beside the length checks.
    """

    default_error_messages = {"not_a_string": "Must be a string.", "not_ascii": CI_STRING_MESSAGE}

    def __init__(self, *, ascii_only: bool = False, strict: bool = True, **kwargs):
        kwargs.setdefault("trim_whitespace", not strict)
        super().__init__(**kwargs)
        self.ascii_only = ascii_only
        self.strict = strict
        if ascii_only and not strict:
            self.validators.append(
                RegexValidator(PRINTABLE_ASCII, message=self.error_messages["not_ascii"])
            )

    def to_internal_value(self, data):
        if self.strict:
            if not isinstance(data, str):
                self.fail("not_a_string")
            if self.ascii_only and not _PRINTABLE_ASCII.match(data):
                self.fail("not_ascii")
        return super().to_internal_value(data)


def ci_string(max_length: int, *, required: bool = True) -> StringField:
    """A lenient CiString(max_length) (StringField with strict=False), null when not required:
    what the commands receiver reads ids with. Anything not a string or number is refused with
    the CiString message, too."""
    return StringField(
        ascii_only=True,
        strict=False,
        max_length=max_length,
        required=required,
        allow_null=not required,
        error_messages={"invalid": CI_STRING_MESSAGE},
    )


def token_field() -> serializers.RegexField:
    """The Credentials `token` (string(64) of printable non-whitespace ASCII)."""
    return serializers.RegexField(
        TOKEN_PATTERN,
        trim_whitespace=False,
        error_messages={"invalid": "Must be 1 to 64 printable non-whitespace ASCII characters."},
    )


def party_id_field() -> serializers.RegexField:
    return serializers.RegexField(
        r"\A[A-Za-z0-9]{3}\Z", error_messages={"invalid": "Must be 3 letters or digits."}
    )


def country_code_field() -> serializers.RegexField:
    return serializers.RegexField(
        r"\A[A-Za-z]{2}\Z", error_messages={"invalid": "Must be 2 letters (ISO 3166-1 alpha-2)."}
    )


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: true or false, not "yes", 1 or "true"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a string of digits, not a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class DateTimeField(serializers.Field):
    """An OCPI DateTime (§1.9), parsed leniently into an aware UTC datetime; output as is (the
    JSON codec writes OCPI DateTimes)."""

    default_error_messages = {"invalid": "Must be an RFC 3339 date-time (UTC)."}

    def to_internal_value(self, data):
        try:
            return parse_datetime(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return value


class PassThroughField(serializers.Field):
    """Any JSON value, validated later by its own parser."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class ResponseURLField(serializers.URLField):
    """An OCPI URL (string(255)) we will POST to: http or https only."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Must be an http or https URL.")
        return value
