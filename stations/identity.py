"""The CPO parties that own this network (one platform may host several CPO roles in 2.2.1).

Configuration, not protocol: the network's objects carry these country codes and party ids, and
the OCPI layer presents them to partners as CredentialsRoles.
"""

from django.conf import settings


def cpo_roles() -> list[dict]:
    """The CPO roles this platform hosts, as OCPI CredentialsRole dicts."""
    details = {"name": settings.OCPI_BUSINESS_NAME}
    if settings.OCPI_BUSINESS_WEBSITE:
        details["website"] = settings.OCPI_BUSINESS_WEBSITE
    roles = [
        {
            "role": "CPO",
            "business_details": details,
            "party_id": settings.OCPI_PARTY_ID,
            "country_code": settings.OCPI_COUNTRY_CODE,
        }
    ]
    for spec in filter(None, (s.strip() for s in settings.OCPI_EXTRA_ROLES.split(";"))):
        country_code, party_id, name = (spec.split(":", 2) + [""])[:3]
        roles.append(
            {
                "role": "CPO",
                "business_details": {"name": name or settings.OCPI_BUSINESS_NAME},
                "party_id": party_id,
                "country_code": country_code,
            }
        )
    return roles
