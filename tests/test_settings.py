"""Settings and secrets: where they come from, what is refused, over real calls."""

import os
from pathlib import Path

import yaml

from helpers import BRAVO_TOKEN, read_json, run_gensvc, stats


def info(tmp_path, env, *extra):
    out = tmp_path / "info.json"
    return run_gensvc(["bravo", "info", "--output", f"info={out}", *extra], env), out


def test_token_from_environment(tmp_path, env, bravo):
    done, out = info(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert read_json(out)["api_version"] == "v1"


def with_credentials_file(env, path, mode, named=True) -> dict:
    """``env`` with Bravo's token in a credentials file of ``mode`` at ``path`` instead of its variable;
    ``named``: GENSVC_CREDENTIALS names the file (else gensvc finds it where it looks by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"bravo": {"token": BRAVO_TOKEN}}))
    os.chmod(path, mode)
    env = {k: v for k, v in env.items() if k != "GENSVC_BRAVO_TOKEN"}
    return env | {"GENSVC_CREDENTIALS": str(path)} if named else env


def test_token_from_credentials_file_with_mode_600(tmp_path, env, bravo):
    done, out = info(tmp_path, with_credentials_file(env, tmp_path / "credentials.yaml", 0o600))
    assert done.returncode == 0, done.stderr
    assert out.exists()


def test_default_credentials_file_under_home(tmp_path, env, bravo):
    creds = tmp_path / "home" / ".config" / "gensvc" / "credentials.yaml"
    done, _ = info(tmp_path, with_credentials_file(env, creds, 0o600, named=False))
    assert done.returncode == 0, done.stderr


def test_credentials_file_readable_by_others_is_refused_before_any_request(tmp_path, env, bravo):
    done, out = info(tmp_path, with_credentials_file(env, tmp_path / "credentials.yaml", 0o644))
    assert done.returncode == 2
    assert "chmod 600" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert stats(bravo)["requests"] == 0


def test_token_file_param(tmp_path, env, bravo):
    token_file = tmp_path / "bravo.token"
    token_file.write_text(BRAVO_TOKEN + "\n")
    env = {k: v for k, v in env.items() if k != "GENSVC_BRAVO_TOKEN"}
    done, out = info(tmp_path, env, "--token-file", token_file)
    assert done.returncode == 0, done.stderr
    prov = read_json(f"{out}.prov.json")
    assert BRAVO_TOKEN not in out.with_name(out.name + ".prov.json").read_text()
    assert "token_file" not in prov["request"]["params"]


def test_secret_in_params_is_refused(tmp_path, env, bravo):
    from gensvc.runner import Call, execute

    call = Call("bravo", "info", output={"info": str(tmp_path / "i.json")}, params={"token": "abc123secret"})
    assert execute(call) == 2
    assert stats(bravo)["requests"] == 0


def test_url_precedence_params_over_environment_over_config(tmp_path, env, bravo):
    config = tmp_path / "gensvc.yaml"
    config.write_text(yaml.safe_dump({"bravo": {"url": "http://127.0.0.1:9/nothing/"}}))
    env_config_only = {k: v for k, v in env.items() if k != "GENSVC_BRAVO_URL"} | {
        "GENSVC_CONFIG": str(config),
        "GENSVC_BRAVO_MAX_ATTEMPTS": "1",
    }
    done, _ = info(tmp_path, env_config_only)
    assert done.returncode == 5  # the config's dead URL was used
    assert "127.0.0.1:9" in done.stderr
    done, _ = info(tmp_path, env | {"GENSVC_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr  # the environment beat the config
    done, out = info(tmp_path, env_config_only, "--url", bravo.url)
    assert done.returncode == 0, done.stderr  # params beat both
    assert read_json(f"{out}.prov.json")["url"] == bravo.url


def test_missing_config_file_named_in_environment(tmp_path, env):
    done, _ = info(tmp_path, env | {"GENSVC_CONFIG": str(tmp_path / "absent.yaml")})
    assert done.returncode == 2
    assert "GENSVC_CONFIG" in done.stderr


def test_unwritable_output_is_one_line_not_a_traceback(tmp_path, env, bravo):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    done = run_gensvc(["bravo", "info", "--output", f"info={blocker / 'info.json'}"], env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "not-a-directory" in done.stderr


def test_limiter_state_is_the_users_and_the_journal_stays_with_the_workflow(tmp_path, monkeypatch):
    from gensvc.settings import limiter_dir, state_dir

    monkeypatch.delenv("GENSVC_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert limiter_dir() == tmp_path / "home" / ".local" / "state" / "gensvc"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert limiter_dir() == tmp_path / "xdg" / "gensvc"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/path")  # ignored, as the XDG spec says
    assert limiter_dir() == tmp_path / "home" / ".local" / "state" / "gensvc"
    assert state_dir() == Path(".gensvc")
    monkeypatch.setenv("GENSVC_STATE_DIR", str(tmp_path / "shared"))
    assert limiter_dir() == state_dir() == tmp_path / "shared"
