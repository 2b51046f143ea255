"""Input validation for the credentials module (PROTOCOL.md §3.1).

`parse_credentials()` turns a partner's Credentials body into plain Python data or raises DRF's
ValidationError (answered 2001 by the exception handler). Unknown fields are ignored (§10.23);
optional fields may be absent or null.
"""

from rest_framework import serializers

ROLES = ("CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP")

# Printable non-whitespace ASCII, U+0021..U+007E (the Credentials `token` rule).
TOKEN_PATTERN = r"\A[\x21-\x7e]{1,64}\Z"


def token_field() -> serializers.RegexField:
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


class ImageSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=255)
    thumbnail = serializers.URLField(max_length=255, required=False, allow_null=True)
    category = serializers.CharField(max_length=20)
    type = serializers.CharField(max_length=4)
    width = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    height = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class BusinessDetailsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    website = serializers.URLField(max_length=255, required=False, allow_null=True)
    logo = ImageSerializer(required=False, allow_null=True)


class CredentialsRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    business_details = BusinessDetailsSerializer()
    party_id = party_id_field()
    country_code = country_code_field()


class CredentialsSerializer(serializers.Serializer):
    token = token_field()
    url = serializers.URLField(max_length=255)
    roles = CredentialsRoleSerializer(many=True, allow_empty=False)

    def validate_roles(self, roles: list[dict]) -> list[dict]:
        seen = set()
        for role in roles:
            key = (role["role"], role["country_code"].upper(), role["party_id"].upper())
            if key in seen:
                raise serializers.ValidationError(
                    f"Role {key[0]} {key[1]}*{key[2]} is listed twice; each must be unique."
                )
            seen.add(key)
        return roles


class CredentialsV211Serializer(serializers.Serializer):
    """OCPI 2.1.1 Credentials: one party, flat (PROTOCOL.md §3.8, §8)."""

    token = token_field()
    url = serializers.URLField(max_length=255)
    business_details = BusinessDetailsSerializer()
    party_id = party_id_field()
    country_code = country_code_field()


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def parse_credentials(data, *, version: str) -> dict:
    """A validated Credentials object as {token, url, roles: [CredentialsRole dicts]}.

    Raises rest_framework.exceptions.ValidationError. 2.1.1's flat form becomes one EMSP role.
    """
    if version == "2.1.1":
        serializer = CredentialsV211Serializer(data=data)
        serializer.is_valid(raise_exception=True)
        flat = _without_nulls(dict(serializer.validated_data))
        role = {
            "role": "EMSP",
            "business_details": flat["business_details"],
            "party_id": flat["party_id"],
            "country_code": flat["country_code"],
        }
        return {"token": flat["token"], "url": flat["url"], "roles": [role]}
    serializer = CredentialsSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return _without_nulls(dict(serializer.validated_data))


def credentials_to_ocpi(*, token: str, url: str, roles: list[dict], version: str) -> dict:
    """Our Credentials object for a partner, in that partner's version."""
    if version == "2.1.1":
        first = roles[0]
        return {
            "token": token,
            "url": url,
            "business_details": first["business_details"],
            "party_id": first["party_id"],
            "country_code": first["country_code"],
        }
    return {"token": token, "url": url, "roles": roles}
