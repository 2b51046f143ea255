"""Input validation of the charging profiles receiver (PROTOCOL.md §5.8).

PUT carries SetChargingProfile in the body; GET and DELETE carry their parameters in the query
(`duration` and `response_url`; `response_url`), as a GET or DELETE has no body. Limits are kept
as exact Decimals; unknown fields are ignored, optional fields may be null (§10.23). Invalid
input raises DRF's ValidationError (2001, nothing kept).
"""

from decimal import Decimal

from rest_framework import serializers

from ...fields import DateTimeField, ResponseURLField, without_nulls

_MAX_SECONDS = 10 * 365 * 24 * 3600
_MAX_RATE = Decimal(10**8)


def _rate(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=None, decimal_places=None, min_value=Decimal(0), max_value=_MAX_RATE, **kwargs
    )


class ChargingProfilePeriodSerializer(serializers.Serializer):
    start_period = serializers.IntegerField(min_value=0, max_value=_MAX_SECONDS)
    limit = _rate()


class ChargingProfileSerializer(serializers.Serializer):
    start_date_time = DateTimeField(required=False, allow_null=True)
    duration = serializers.IntegerField(
        min_value=0, max_value=_MAX_SECONDS, required=False, allow_null=True
    )
    charging_rate_unit = serializers.ChoiceField(choices=("W", "A"))
    min_charging_rate = _rate(required=False, allow_null=True)
    charging_profile_period = ChargingProfilePeriodSerializer(
        many=True, required=False, allow_null=True
    )

    def validate_charging_profile_period(self, periods):
        starts = [period["start_period"] for period in periods or []]
        if len(set(starts)) != len(starts):
            raise serializers.ValidationError("Each start_period may appear once.")
        return sorted(periods or [], key=lambda period: period["start_period"])


class SetChargingProfileSerializer(serializers.Serializer):
    charging_profile = ChargingProfileSerializer()
    response_url = ResponseURLField()


class ActiveProfileQuerySerializer(serializers.Serializer):
    duration = serializers.IntegerField(min_value=0, max_value=_MAX_SECONDS)
    response_url = ResponseURLField()


class ClearProfileQuerySerializer(serializers.Serializer):
    response_url = ResponseURLField()


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return without_nulls(dict(serializer.validated_data))


def parse_set_profile(data) -> dict:
    """A validated SetChargingProfile: {charging_profile: {...}, response_url}."""
    return _validated(SetChargingProfileSerializer, data)


def parse_active_profile_query(query) -> dict:
    """GET parameters: {duration, response_url}."""
    return _validated(ActiveProfileQuerySerializer, {k: query.get(k) for k in query})


def parse_clear_profile_query(query) -> dict:
    """DELETE parameters: {response_url}."""
    return _validated(ClearProfileQuerySerializer, {k: query.get(k) for k in query})
