"""Input validation for the credentials module (PROTOCOL.md §3.1).

`parse_credentials()` turns a partner's Credentials body into plain Python data or raises DRF's
ValidationError (answered 2001 by the exception handler). Unknown fields are ignored (§10.23);
optional fields may be absent or null.
"""

from rest_framework import serializers

from .fields import country_code_field, party_id_field, token_field, without_nulls

ROLES = ("CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP")


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


def parse_credentials(data, *, version: str) -> dict:
    """A validated Credentials object as {token, url, roles: [CredentialsRole dicts]}.

    Raises rest_framework.exceptions.ValidationError. 2.1.1's flat form becomes one EMSP role.
    """
    if version == "2.1.1":
        serializer = CredentialsV211Serializer(data=data)
        serializer.is_valid(raise_exception=True)
        flat = without_nulls(dict(serializer.validated_data))
        role = {
            "role": "EMSP",
            "business_details": flat["business_details"],
            "party_id": flat["party_id"],
            "country_code": flat["country_code"],
        }
        return {"token": flat["token"], "url": flat["url"], "roles": [role]}
    serializer = CredentialsSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return without_nulls(dict(serializer.validated_data))


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
