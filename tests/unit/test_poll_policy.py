"""gensvc.core.poll's policy in process: checks spaced by the job's age see a job's end within
max(2 s, 10 % of its length) for jobs of 5 s to 30 min, with checks that grow with the
logarithm of the length; a forecast from reported progress only brings a check forward, once
per progress value; a poll of an old job checks at once. Also the services' progress readings
(OpenCRAVAT's stages, CAVATICA's steps)."""

import math
import random
import time

import pytest

from gensvc.core.poll import Forecast, JobState, PollPolicy, wait_for_job
from gensvc.services.cavatica_tasks import _steps_done
from gensvc.services.opencravat import stage_progress

LENGTHS = [5, 7.5, 12, 19.9, 20.1, 30, 61, 120, 300, 601, 1200, 1800]
DEFAULT = PollPolicy(first=1.8, cap=60.0)  # the services' default first_wait / max_wait


def simulate(length: float, policy: PollPolicy, jitter_seed: int = 0) -> tuple[float, int]:
    """(detection delay, checks) for a job that ends ``length`` s after submission."""
    random.seed(jitter_seed)
    age, checks = policy.first_wait(0.0), 0
    while True:
        checks += 1
        if age >= length:
            return age - length, checks
        age += policy.next_wait(age)


def fixed_ten_seconds(length: float) -> int:
    return math.floor(length / 10) + 1  # checks at 10, 20, ... until one at or after the end


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length", LENGTHS)
def test_a_job_of_5_s_to_30_min_is_seen_within_2_s_or_a_tenth_of_its_length(length, seed):
    delay, _ = simulate(length, DEFAULT, seed)
    assert delay <= max(2.0, 0.1 * length)


@pytest.mark.parametrize("length", [601, 900, 1200, 1800])
def test_from_ten_minutes_on_it_asks_no_more_often_than_fixed_10_s_polling(length):
    assert simulate(length, DEFAULT)[1] <= fixed_ten_seconds(length)


def test_checks_grow_with_the_logarithm_of_the_length_up_to_the_cap():
    checks = {length: simulate(length, PollPolicy(first=1.8, cap=1e9))[1] for length in (60, 600, 6000)}
    # ten times longer, about log(10) / log(1.1) = 24 more checks, not ten times more
    assert checks[600] - checks[60] <= 27 and checks[6000] - checks[600] <= 27
    assert simulate(1800, DEFAULT)[1] <= 75  # fixed 10 s: 181


def test_a_wait_stays_between_the_floor_less_jitter_and_a_tenth_of_the_age_or_the_cap():
    policy = PollPolicy(first=2.0, cap=60.0, jitter=0.1)
    for age in (0.0, 5.0, 19.0, 100.0, 599.0, 5000.0):
        for _ in range(50):
            wait = policy.next_wait(age)
            assert 2.0 * 0.9 <= wait or 0.1 * age * 0.9 <= wait
            assert wait <= max(2.0, min(60.0, 0.1 * age))


def test_a_poll_of_a_job_older_than_the_first_wait_checks_at_once():
    assert DEFAULT.first_wait(0.0) == 1.8
    assert DEFAULT.first_wait(1.0) == pytest.approx(0.8)
    assert DEFAULT.first_wait(300.0) == 0.0


def test_progress_that_foretells_an_end_sooner_brings_the_next_check_forward_once_per_value():
    policy = PollPolicy(first=1.0, cap=60.0, jitter=0.0)
    forecast = Forecast()
    forecast.read(100.0, 0.5)
    forecast.read(104.0, 0.9)  # 0.4 in 4 s: the rest (0.1) in 1 s
    assert policy.next_wait(104.0, forecast) == pytest.approx(1.0)  # the floor; the age rule says 10.4
    forecast.read(105.0, 0.9)  # the forecast was wrong: the same progress a second later
    assert policy.next_wait(105.0, forecast) == pytest.approx(10.5)  # back to the age rule
    forecast.read(107.0, 0.95)
    assert policy.next_wait(107.0, forecast) == pytest.approx(
        max(1.0, 0.05 * (107.0 - 100.0) / 0.45))


def test_progress_that_foretells_a_later_end_never_makes_a_wait_longer():
    policy = PollPolicy(first=1.0, cap=60.0, jitter=0.0)
    forecast = Forecast()
    forecast.read(10.0, 0.01)
    forecast.read(20.0, 0.02)  # about 980 s to go
    assert policy.next_wait(20.0, forecast) == pytest.approx(2.0)


def test_one_reading_of_progress_or_none_at_all_foretells_nothing():
    forecast = Forecast()
    forecast.read(5.0, None)
    forecast.read(6.0, 0.0)
    assert forecast.remaining() is None
    forecast.read(7.0, 0.3)
    assert forecast.remaining() is None


def test_wait_for_job_checks_an_old_job_at_once_and_counts_its_checks():
    answers = iter([JobState("RUNNING"), JobState("COMPLETED", finished=True)])
    started = time.monotonic()
    state, checks = wait_for_job(lambda: next(answers), PollPolicy(first=5.0, floor=0.01, cap=0.01, timeout=30),
                                 what="unit job", where="http://unit.invalid/", submitted=time.time() - 600)
    assert state.status == "COMPLETED" and checks == 2
    assert time.monotonic() - started < 5.0  # neither the first wait nor 10 % of 600 s


OC_REQUEST = {"annotators": ["clinvar", "go"], "reports": ["vcf", "tsv"]}
OC_STAGES = [  # the statuses `oc run` writes, in order (the emulator's plan of a VCF job)
    "Starting", "Started cravat", "Running Converter (converter)", "Started Deterministic gene mapper (hg38)",
    "Running gene mapper: line 10000", "Running ClinVar (clinvar): line 10000", "Running Gene Ontology (go): line 10000",
    "Running Aggregator (variant)", "Running Aggregator (gene)", "Running Aggregator (sample)",
    "Running Aggregator (mapping)", "Finished Aggregator (mapping)", "Running Tag Sampler (tagsampler)",
    "Running VCF Info (vcfinfo)", "Running VCF Reporter (vcfreporter)", "Running Tab-separated (tsvreporter)",
]


def test_opencravat_stages_read_as_progress_that_never_goes_back():
    shares = [stage_progress(status, OC_REQUEST) for status in OC_STAGES]
    assert all(share is not None and 0 < share < 1 for share in shares)
    assert shares == sorted(shares) and shares[-1] > shares[0]


@pytest.mark.parametrize("status", ["Submitted", "Error", "something new"])
def test_an_opencravat_status_of_no_known_stage_is_no_progress(status):
    assert stage_progress(status, OC_REQUEST) is None


@pytest.mark.parametrize("execution, share", [
    ({"steps_completed": 3, "steps_total": 4}, 0.75),
    ({"steps_completed": 0, "steps_total": 2}, None),
    ({"steps_completed": 1, "steps_total": 0}, None),
    ({}, None),
])
def test_a_cavatica_task_s_progress_is_its_share_of_steps_completed(execution, share):
    assert _steps_done({"status": "RUNNING", "execution_status": execution}) == share
