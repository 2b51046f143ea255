"""The network admin: pages load, changes go through the models, bad input is a form error."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from stations import signals
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

pytestmark = pytest.mark.django_db

OLD = "2020-01-01T00:00:00Z"


class _FormFields(HTMLParser):
    """Collects what a browser would submit from the first <form id="*_form"> of a page."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.in_form = False
        self._textarea = self._select = None
        self._option_value = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self.in_form = True
        if not self.in_form or "name" not in a and tag not in ("option",):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.data.setdefault(a["name"], []).append(a.get("value") or default)
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data.setdefault(self._textarea, []).append("")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.setdefault(self._select, []).append(a.get("value", ""))

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self.in_form = False


def form_data(response) -> dict[str, list[str]]:
    parser = _FormFields()
    parser.feed(response.content.decode())
    data = parser.data
    for name, values in data.items():  # textareas start with a newline the browser drops
        data[name] = [v[1:] if v.startswith("\n") else v for v in values]
    return data


def submit(client, url, changes=None, *, button="_save"):
    """GET the admin form at url, change some fields, POST it as a browser would."""
    data = form_data(client.get(url))
    for name, value in (changes or {}).items():
        data[name] = value if isinstance(value, list) else [value]
    data[button] = ["Save"]
    return client.post(url, data)


def errors_of(response) -> str:
    """The page's text plus, on a form page, its form errors (for readable failures)."""
    text = response.content.decode()
    context = response.context or {}
    if "adminform" in context:
        text += str(context["adminform"].form.errors)
        for inline in context.get("inline_admin_formsets", []):
            text += str(inline.formset.errors) + str(inline.formset.non_form_errors())
    return text


def make_network():
    tariff = Tariff.objects.create(country_code="NL", party_id="CPO", ocpi_id="T1", currency="EUR")
    element = TariffElement.objects.create(tariff=tariff, position=0)
    PriceComponent.objects.create(element=element, type="ENERGY", price=Decimal("0.35"), vat=21)
    location = Location.objects.create(
        country_code="NL", party_id="CPO", ocpi_id="LOC1", name="Stationsplein",
        address="Stationsplein 1", city="Utrecht", postal_code="3511 ED", country="NLD",
        latitude="52.089447", longitude="5.110250", time_zone="Europe/Amsterdam",
        facilities=["WIFI", "CAFE"], opening_times={"twentyfourseven": True},
        images=[{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "jpeg"}],
        energy_mix={"is_green_energy": True, "energy_sources": [
            {"source": "WIND", "percentage": 62.5}, {"source": "SOLAR", "percentage": 37.5}]},
        operator={"name": "Open CPO"},
    )  # fmt: skip
    evse = EVSE.objects.create(
        location=location, uid="EVSE1", evse_id="NL*CPO*E1*1",
        capabilities=["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
    )  # fmt: skip
    connector = Connector.objects.create(
        evse=evse, ocpi_id="1", standard="IEC_62196_T2", format="SOCKET",
        power_type="AC_3_PHASE", max_voltage=230, max_amperage=32, max_electric_power=22000,
        tariff_ids=["T1"],
    )  # fmt: skip
    return location, evse, connector, tariff


def age(*objects) -> None:
    for obj in objects:
        type(obj).objects.filter(pk=obj.pk).update(last_updated=OLD)


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.fixture
def network():
    return make_network()


@pytest.fixture
def evse_signals():
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signals.evse_changed.connect(receiver, weak=False)
    yield received
    signals.evse_changed.disconnect(receiver)


MODELS = ["location", "evse", "connector", "tariff", "tariffelement"]


@pytest.mark.parametrize("model", MODELS)
def test_admin_pages_load(admin_client, network, model):
    # given a network with one object of each kind
    location, evse, connector, tariff = network
    obj = {
        "location": location,
        "evse": evse,
        "connector": connector,
        "tariff": tariff,
        "tariffelement": tariff.elements.get(),
    }[model]

    # when staff open the list, the object and the add form
    pages = [
        reverse(f"admin:stations_{model}_changelist"),
        reverse(f"admin:stations_{model}_changelist") + "?q=1",
        reverse(f"admin:stations_{model}_change", args=[obj.pk]),
        reverse(f"admin:stations_{model}_add"),
    ]

    # then every page renders
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize(
    "query",
    ["?evse_status=AVAILABLE", "?country=NLD&publish__exact=1", "?q=EVSE1", "?q=e1*1", "?o=5"],
)
def test_location_list_filters_and_search(admin_client, network, query):
    # given a network; when the location list is filtered, searched or sorted by #EVSEs
    response = admin_client.get(reverse("admin:stations_location_changelist") + query)

    # then the location is listed with its EVSE count
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert response.context["cl"].result_list[0].evse_total == 1


def test_evse_list_filters_by_status_and_country(admin_client, network):
    # given one AVAILABLE EVSE in the Netherlands
    url = reverse("admin:stations_evse_changelist")

    # when staff filter the EVSE list
    matching = admin_client.get(url + "?status__exact=AVAILABLE&location__country=NLD")
    other = admin_client.get(url + "?status__exact=CHARGING")

    # then only the matching filter lists it
    assert matching.context["cl"].result_count == 1
    assert other.context["cl"].result_count == 0


def test_status_change_on_evse_list_saves_through_the_model(admin_client, network, evse_signals):
    # given an available EVSE last changed long ago
    location, evse, _, _ = network
    age(location, evse)
    url = reverse("admin:stations_evse_changelist")

    # when staff set it OUTOFORDER in the list's status column
    response = admin_client.post(
        url,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(evse.pk),
            "form-0-status": "OUTOFORDER",
            "_save": "Save",
        },
    )

    # then the status is saved, EVSE and location bumped and the change announced
    assert response.status_code == 302
    stored = fresh(evse)
    assert stored.status == "OUTOFORDER"
    assert stored.last_updated.year > 2020
    assert fresh(location).last_updated == stored.last_updated
    assert [s["changed_fields"] for s in evse_signals] == [{"status"}]


def test_status_change_on_list_shows_model_errors_instead_of_failing(admin_client, network):
    # given an EVSE whose stored images are invalid (e.g. written by an import)
    _, evse, _, _ = network
    EVSE.objects.filter(pk=evse.pk).update(images=[{"url": "x"}])

    # when staff change its status in the list
    response = admin_client.post(
        reverse("admin:stations_evse_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(evse.pk),
            "form-0-status": "CHARGING",
            "_save": "Save",
        },
    )

    # then the page shows why, and nothing changed
    assert response.status_code == 200
    assert "images" in errors_of(response)
    assert fresh(evse).status == "AVAILABLE"


def test_status_action_uses_the_service(admin_client, network, evse_signals):
    # given two EVSEs, one already INOPERATIVE
    location, evse, _, _ = network
    other = EVSE.objects.create(location=location, uid="EVSE2", status="INOPERATIVE")
    evse_signals.clear()

    # when staff run "Set status INOPERATIVE" on both
    response = admin_client.post(
        reverse("admin:stations_evse_changelist"),
        {"action": "mark_inoperative", "_selected_action": [evse.pk, other.pk]},
        follow=True,
    )

    # then both are INOPERATIVE and only the real change was announced
    assert fresh(evse).status == fresh(other).status == "INOPERATIVE"
    assert len(evse_signals) == 1
    assert "Set 1 EVSE(s) to INOPERATIVE (1 already were)" in errors_of(response)


def test_delete_confirmation_says_the_evse_becomes_removed(admin_client, network):
    # given an EVSE
    evse = network[1]

    # when staff open its delete page
    response = admin_client.get(reverse("admin:stations_evse_delete", args=[evse.pk]))

    # then it explains that the EVSE will be set to REMOVED, not deleted
    assert response.status_code == 200
    assert "set to status REMOVED" in errors_of(response)
    assert "Yes, set it to REMOVED" in errors_of(response)


def test_deleting_an_evse_in_the_admin_sets_it_removed(admin_client, network, evse_signals):
    # given an EVSE last changed long ago
    location, evse, _, _ = network
    age(location, evse)

    # when staff confirm its deletion
    response = admin_client.post(
        reverse("admin:stations_evse_delete", args=[evse.pk]), {"post": "yes"}, follow=True
    )

    # then it still exists, REMOVED, bumped, announced, logged as a change, and staff are told
    stored = fresh(evse)
    assert stored.status == "REMOVED"
    assert stored.last_updated.year > 2020
    assert fresh(location).last_updated == stored.last_updated
    assert [s["changed_fields"] for s in evse_signals] == [{"status"}]
    assert "was set to REMOVED" in errors_of(response)
    assert LogEntry.objects.get(object_id=str(evse.pk)).action_flag == CHANGE


def test_bulk_delete_action_sets_evses_removed(admin_client, network):
    # given two EVSEs
    location, evse, _, _ = network
    other = EVSE.objects.create(location=location, uid="EVSE2")
    url = reverse("admin:stations_evse_changelist")
    selection = {"action": "delete_selected", "_selected_action": [evse.pk, other.pk]}

    # when staff pick the delete action, read the confirmation and confirm
    confirmation = admin_client.post(url, selection)
    response = admin_client.post(url, {**selection, "post": "yes"}, follow=True)

    # then the confirmation said REMOVED, and both EVSEs are still there, REMOVED
    assert "set to status REMOVED" in errors_of(confirmation)
    assert set(EVSE.objects.values_list("status", flat=True)) == {"REMOVED"}
    assert EVSE.objects.count() == 2
    assert "Set 2 EVSE(s) to REMOVED" in errors_of(response)


@pytest.mark.parametrize("model", ["location", "connector"])
def test_locations_and_connectors_cannot_be_deleted(admin_client, network, model):
    # given a location and a connector
    obj = network[0] if model == "location" else network[2]

    # when staff try to delete one, then that is forbidden and it stays
    response = admin_client.post(reverse(f"admin:stations_{model}_delete", args=[obj.pk]))
    assert response.status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_saving_an_unchanged_location_form_bumps_nothing(admin_client, network):
    # given a location (with facilities, JSON fields and an EVSE) last changed long ago
    location, evse, connector, _ = network
    age(location, evse, connector)

    # when staff open it and press save without changing anything
    response = submit(admin_client, reverse("admin:stations_location_change", args=[location.pk]))

    # then nothing was bumped
    assert response.status_code == 302
    assert fresh(location).last_updated.year == 2020
    assert fresh(evse).last_updated.year == 2020


def test_location_form_edits_json_and_evse_status(admin_client, network, evse_signals):
    # given a location with an EVSE
    location, evse, _, _ = network
    age(location, evse)
    url = reverse("admin:stations_location_change", args=[location.pk])

    # when staff set regular opening hours, a facility and the EVSE status in the inline
    response = submit(
        admin_client,
        url,
        {
            "opening_times": '{"twentyfourseven": false, "regular_hours": [{"weekday": 1, '
            '"period_begin": "08:00", "period_end": "20:00"}]}',
            "facilities": ["CAFE", "WIFI", "HOTEL"],
            "evses-0-status": "BLOCKED",
        },
    )

    # then everything is saved through the models
    assert response.status_code == 302
    stored = fresh(location)
    assert stored.opening_times["regular_hours"][0]["period_begin"] == "08:00"
    assert set(stored.facilities) == {"CAFE", "WIFI", "HOTEL"}
    assert fresh(evse).status == "BLOCKED"
    assert stored.last_updated.year > 2020
    assert len(evse_signals) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("opening_times", '{"twentyfourseven": "maybe"}', "twentyfourseven"),
        ("opening_times", "{not json", "Enter a valid JSON"),
        ("images", '[{"url": "https://example.com/a.jpg", "category": "SELFIE", "type": "jpeg"}]',
         "not one of the OCPI values"),
        ("energy_mix", '{"is_green_energy": true, "energy_sources": [{"source": "WIND", '
         '"percentage": 140}]}', "between 0 and 100"),
        ("latitude", "52.1", "latitude must match"),
        ("country", "NL", "alpha-3"),
    ],
)  # fmt: skip
def test_invalid_location_input_is_a_form_error(admin_client, network, field, value, message):
    # given a location
    location = network[0]
    before = Location.objects.values().get(pk=location.pk)

    # when staff save an invalid value
    response = submit(
        admin_client, reverse("admin:stations_location_change", args=[location.pk]), {field: value}
    )

    # then the form is shown again with the reason, and nothing changed
    assert response.status_code == 200
    assert message in errors_of(response)
    assert Location.objects.values().get(pk=location.pk) == before


def test_emptied_json_list_is_saved_as_empty_list(admin_client, network):
    # given a location with images
    location = network[0]

    # when staff empty the images box
    response = submit(
        admin_client, reverse("admin:stations_location_change", args=[location.pk]), {"images": ""}
    )

    # then the location has no images (not a database error)
    assert response.status_code == 302
    assert fresh(location).images == []


def test_add_location_then_evse_with_connectors(admin_client, settings):
    # given our party NL/CPO and a tariff
    Tariff.objects.create(country_code="NL", party_id="CPO", ocpi_id="AC-1", currency="EUR")
    add_url = reverse("admin:stations_location_add")
    defaults = form_data(admin_client.get(add_url))

    # when staff add a location (country code and party are pre-filled) ...
    response = submit(
        admin_client,
        add_url,
        {
            "ocpi_id": "NEW1",
            "address": "Marktplein 1",
            "city": "Gouda",
            "country": "NLD",
            "latitude": "52.011610",
            "longitude": "4.710480",
        },
    )
    location = Location.objects.get(ocpi_id="NEW1")
    # ... and an EVSE with two connectors from the location's "add EVSE" link
    evse_url = reverse("admin:stations_evse_add") + f"?location={location.pk}"
    evse_response = submit(
        admin_client,
        evse_url,
        {
            "uid": "NEW1-1",
            "connectors-TOTAL_FORMS": "2",
            **{
                f"connectors-{n}-{k}": v
                for n in (0, 1)
                for k, v in {
                    "ocpi_id": str(n + 1),
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": "230",
                    "max_amperage": "16",
                    "tariff_ids": "ac-1",
                }.items()
            },
        },
    )

    # then both exist with our identity and the connectors refer to the tariff
    assert defaults["country_code"] == ["NL"]
    assert defaults["party_id"] == ["CPO"]
    assert response.status_code == 302
    assert location.country_code == "NL"
    assert location.party_id == "CPO"
    assert evse_response.status_code == 302
    evse = EVSE.objects.get(uid="NEW1-1")
    assert evse.location == location
    assert list(evse.connectors.values_list("ocpi_id", "tariff_ids")) == [
        ("1", ["ac-1"]),
        ("2", ["ac-1"]),
    ]


def test_evse_needs_a_connector(admin_client, network):
    # given a location
    location = network[0]

    # when staff add an EVSE and remove the connector row
    response = submit(
        admin_client,
        reverse("admin:stations_evse_add") + f"?location={location.pk}",
        {"uid": "EVSE9", "connectors-TOTAL_FORMS": "0"},
    )

    # then the form asks for a connector and nothing was created
    assert response.status_code == 200
    assert "Please submit at least 1 form" in errors_of(response)
    assert not EVSE.objects.filter(uid="EVSE9").exists()


def test_connector_ids_differing_in_case_are_a_form_error(admin_client, network):
    # given a location
    location = network[0]
    rows = {
        f"connectors-{n}-{k}": v
        for n, ocpi_id in ((0, "A"), (1, "a"))
        for k, v in {
            "ocpi_id": ocpi_id,
            "standard": "IEC_62196_T2",
            "format": "SOCKET",
            "power_type": "AC_3_PHASE",
            "max_voltage": "230",
            "max_amperage": "16",
        }.items()
    }

    # when staff add an EVSE with connectors "A" and "a"
    response = submit(
        admin_client,
        reverse("admin:stations_evse_add") + f"?location={location.pk}",
        {"uid": "EVSE9", "connectors-TOTAL_FORMS": "2", **rows},
    )

    # then the form says so and nothing was created
    assert response.status_code == 200
    assert "appears twice" in errors_of(response)
    assert not EVSE.objects.filter(uid="EVSE9").exists()


def test_duplicate_evse_uid_ignoring_case_is_a_form_error(admin_client, network):
    # given EVSE1 at LOC1
    location = network[0]

    # when staff add "evse1" to the same location
    response = submit(
        admin_client,
        reverse("admin:stations_evse_add") + f"?location={location.pk}",
        {
            "uid": "evse1",
            "connectors-0-ocpi_id": "1",
            "connectors-0-standard": "IEC_62196_T2",
            "connectors-0-format": "SOCKET",
            "connectors-0-power_type": "AC_3_PHASE",
            "connectors-0-max_voltage": "230",
            "connectors-0-max_amperage": "16",
        },
    )

    # then the form explains the clash and nothing was created
    assert response.status_code == 200
    assert "already has an EVSE with this uid" in errors_of(response)
    assert EVSE.objects.count() == 1


def test_connector_with_unknown_tariff_is_a_form_error(admin_client, network):
    # given a connector referring to tariff T1
    connector = network[2]

    # when staff point it at a tariff that does not exist
    response = submit(
        admin_client,
        reverse("admin:stations_connector_change", args=[connector.pk]),
        {"tariff_ids": "T1, NOPE"},
    )

    # then the form names the unknown id and nothing changed
    assert response.status_code == 200
    assert "Unknown tariff id(s): NOPE" in errors_of(response)
    assert fresh(connector).tariff_ids == ["T1"]


def test_uid_cannot_be_changed_once_created(admin_client, network):
    # given an EVSE
    evse = network[1]

    # when staff post another uid for it
    response = submit(
        admin_client, reverse("admin:stations_evse_change", args=[evse.pk]), {"uid": "OTHER"}
    )

    # then the uid is kept (it is read-only)
    assert response.status_code == 302
    assert fresh(evse).uid == "EVSE1"


def test_price_component_edit_bumps_tariff_and_returns_to_it(admin_client, network):
    # given a tariff with one element, last changed long ago
    tariff = network[3]
    element = tariff.elements.get()
    age(tariff)

    # when staff change the element's energy price on the element page
    response = submit(
        admin_client,
        reverse("admin:stations_tariffelement_change", args=[element.pk]),
        {"price_components-0-price": "0.42", "start_time": "07:00", "end_time": "23:00"},
    )

    # then the price and restriction are saved, the tariff bumped, and staff are back on it
    assert response.status_code == 302
    assert response.url == reverse("admin:stations_tariff_change", args=[tariff.pk])
    assert PriceComponent.objects.get(element=element).price == Decimal("0.42")
    assert fresh(element).start_time == "07:00"
    assert fresh(tariff).last_updated.year > 2020


def test_tariff_in_use_cannot_be_deleted(admin_client, network):
    # given tariff T1, used by a connector, and an unused tariff
    tariff = network[3]
    unused = Tariff.objects.create(country_code="NL", party_id="CPO", ocpi_id="T2", currency="EUR")

    # when staff try to delete both
    used_page = admin_client.post(
        reverse("admin:stations_tariff_delete", args=[tariff.pk]), {"post": "yes"}
    )
    admin_client.post(reverse("admin:stations_tariff_delete", args=[unused.pk]), {"post": "yes"})

    # then the used one is protected (and the page says by what), the unused one is gone
    assert "lists tariff T1" in errors_of(used_page)
    assert Tariff.objects.filter(pk=tariff.pk).exists()
    assert not Tariff.objects.filter(pk=unused.pk).exists()


def test_add_tariff_with_element_then_its_price_components(admin_client):
    # given the tariff add page (country code, party id and currency pre-filled)
    add_url = reverse("admin:stations_tariff_add")

    # when staff add a tariff with a night element (over midnight) ...
    response = submit(
        admin_client,
        add_url,
        {
            "ocpi_id": "NIGHT-1",
            "type": "REGULAR",
            "tariff_alt_text": '[{"language": "en", "text": "Cheaper at night"}]',
            "elements-TOTAL_FORMS": "1",
            "elements-0-position": "0",
            "elements-0-start_time": "23:00",
            "elements-0-end_time": "07:00",
        },
    )
    followed = admin_client.get(response.url)
    tariff = Tariff.objects.get(ocpi_id="NIGHT-1")
    element = tariff.elements.get()
    # ... and then give the element its price from the tariff's "add element" flow
    component = submit(
        admin_client,
        reverse("admin:stations_tariffelement_change", args=[element.pk]),
        {
            "price_components-0-position": "0",
            "price_components-0-type": "ENERGY",
            "price_components-0-price": "0.25",
            "price_components-0-vat": "21",
            "price_components-0-step_size": "1",
        },
    )

    # then the tariff exists as ours, staff were warned about the empty element, and the
    # component is saved
    assert response.status_code == 302
    assert (tariff.country_code, tariff.party_id, tariff.currency) == ("NL", "CPO", "EUR")
    assert (element.start_time, element.end_time) == ("23:00", "07:00")
    assert "have no price components yet" in errors_of(followed)
    assert component.status_code == 302
    assert list(element.price_components.values_list("type", "price", "vat")) == [
        ("ENERGY", Decimal("0.25"), Decimal("21"))
    ]
