"""CGI's cancer type codes: one data file, read by the client and the emulator alike."""

from gensvc.emulators import cgi_results
from gensvc.services.cgi import cancer_types


def test_the_client_and_the_emulator_know_the_same_cancer_type_codes():
    assert set(cgi_results.CANCER_TYPES) == set(cancer_types())
    assert len(cancer_types()) > 200 and cancer_types()["LUAD"] == cgi_results.CANCER_TYPES["LUAD"]
