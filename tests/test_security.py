"""Secrets stay secret: not in logs (even at DEBUG), outputs, provenance or error lines."""

from helpers import BRAVO_TOKEN, read_json, run_gensvc, stats


def all_text(tmp_path) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())


def test_debug_logs_redact_the_token(tmp_path, env, bravo):
    out, log = tmp_path / "out" / "r.json", tmp_path / "logs" / "r.log"
    done = run_gensvc(
        ["bravo", "region", "--chrom", "22", "--start", "16387675", "--end", "16390908", "--limit", "50",
         "--output", f"variants={out}", "--log", log],
        env | {"GENSVC_LOG_LEVEL": "DEBUG"},
    )
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "Authorization" in text and "***" in text  # request headers were logged, masked
    assert "GET " in text and "-> 200" in text
    for where in (text, done.stdout, done.stderr, all_text(tmp_path)):
        assert BRAVO_TOKEN not in where


def test_wrong_token_exits_3_with_a_hint_and_no_secret(tmp_path, env, bravo):
    wrong = "wrong-token-0123456789abcdef"
    out, log = tmp_path / "i.json", tmp_path / "i.log"
    done = run_gensvc(["bravo", "info", "--output", f"info={out}", "--log", log],
                      env | {"GENSVC_BRAVO_TOKEN": wrong, "GENSVC_LOG_LEVEL": "DEBUG"})
    assert done.returncode == 3
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "not authorized" in line and "GENSVC_BRAVO_TOKEN" in line
    assert stats(bravo)["requests"] == 1  # an auth failure is not retried
    for where in (done.stdout, done.stderr, all_text(tmp_path)):
        assert wrong not in where
    assert not out.exists()


def test_missing_token_exits_3(tmp_path, env, bravo):
    env = {k: v for k, v in env.items() if k != "GENSVC_BRAVO_TOKEN"}
    done = run_gensvc(["bravo", "info", "--output", f"info={tmp_path / 'i.json'}"], env)
    assert done.returncode == 3
    assert "token" in done.stderr


def test_next_links_never_carry_the_token_elsewhere(tmp_path, env, bravo):
    # a paged answer is followed on the configured server only: the provenance URL and the
    # emulator's own count prove every page went to it
    out = tmp_path / "r.tsv"
    done = run_gensvc(["bravo", "region", "--chrom", "22", "--start", "16387675", "--end", "16390908",
                       "--limit", "100", "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    assert stats(bravo)["requests"] == read_json(f"{out}.prov.json")["requests"] > 1


def test_a_next_link_to_another_host_is_followed_on_the_configured_server_only(tmp_path, env, bravo):
    from helpers import BRAVO_TOKEN as token, add_fault
    from gensvc.emulators.server import start_emulator

    with start_emulator("bravo", tokens=[token]) as elsewhere:
        # the first page points its `next` at another server; the token must not go there
        foreign = f"{elsewhere.url}region?chrom=22&start=16387675&end=16390908&limit=5&sort=pos:asc&last=x"
        add_fault(bravo, path="*/region", kind="status", status=200, count=1,
                  body={"data": [], "format": "json", "next": foreign})
        out = tmp_path / "r.tsv"
        done = run_gensvc(["bravo", "region", "--chrom", "22", "--start", "16387675", "--end", "16390908",
                           "--output", f"variants={out}"], env)
        assert stats(elsewhere)["requests"] == 0
    assert stats(bravo)["requests"] == 2  # the second page was asked of the configured server
    assert done.returncode == 2  # whose answer to the bogus cursor is a clear refusal
    assert "invalid query parameters" in done.stderr
