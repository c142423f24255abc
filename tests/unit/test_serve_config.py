"""``ServeConfig.load``: options beat ``SPANMETER_*`` variables, which beat the YAML file, which
beats the defaults; bad values name their source and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanmeter import environment_variables as env
from spanmeter.service import ServeConfig


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_source() -> None:
    assert ServeConfig.load(environ={}) == ServeConfig()
    assert ServeConfig().metrics_max_label_sets == 2_000


def test_each_source_overrides_the_one_below_key_by_key(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "spanmeter.yaml",
        "db: from-file.db\nhttp_port: 1111\ngrpc_port: 2222\nmetrics_top_tenants: 3\n"
        "metrics_max_label_sets: 7\nstore_process: false\n",
    )
    environ = {
        env.SPANMETER_HTTP_PORT: "3333",
        env.SPANMETER_GRPC_PORT: "4444",
        env.SPANMETER_METRICS_MAX_LABEL_SETS: "70",
    }
    options = {"grpc_port": 5555, "db": None}  # None: the option was not given

    config = ServeConfig.load(options, config_file=config_file, environ=environ)

    assert config.db == "from-file.db"  # file only (the option was not given)
    assert config.metrics_top_tenants == 3  # file only
    assert config.store_process is False  # file only, a YAML boolean
    assert config.http_port == 3333  # env beats file
    assert config.metrics_max_label_sets == 70  # env beats file
    assert config.grpc_port == 5555  # option beats env and file
    assert config.max_body_mb == ServeConfig().max_body_mb  # nobody set it: the default


def test_the_config_file_comes_from_spanmeter_config_unless_given(tmp_path: Path) -> None:
    by_env = write(tmp_path / "env.yaml", "serve:\n  db: env-named.db\n")
    given = write(tmp_path / "given.yaml", "db: given.db\n")
    environ = {env.SPANMETER_CONFIG: str(by_env)}
    assert ServeConfig.load(environ=environ).db == "env-named.db"  # a ``serve:`` section works too
    assert ServeConfig.load(config_file=given, environ=environ).db == "given.db"


def test_dashes_in_option_names_and_off_ports(tmp_path: Path) -> None:
    config = ServeConfig.load({"metrics-max-label-sets": "12"}, environ={env.SPANMETER_GRPC_PORT: "off"})
    assert (config.metrics_max_label_sets, config.grpc_port) == (12, None)
    # YAML reads a bare ``off`` as False: the listener is disabled, not bound to any free port.
    config_file = write(tmp_path / "spanmeter.yaml", "grpc_port: off\nhttp_port: 0\n")
    assert ServeConfig.load(config_file=config_file, environ={}).grpc_port is None
    assert ServeConfig.load(config_file=config_file, environ={}).http_port == 0


@pytest.mark.parametrize(
    ("options", "environ", "file_text", "message"),
    [
        ({}, {}, "no_such_key: 1\n", r"config file .*: unknown setting 'no_such_key'"),
        ({}, {}, "- a list\n", r"expected a mapping"),
        (
            {},
            {env.SPANMETER_METRICS_MAX_LABEL_SETS: "many"},
            "",
            r"environment: invalid metrics_max_label_sets",
        ),
        ({}, {env.SPANMETER_STORE_PROCESS: "maybe"}, "", r"environment: invalid store_process"),
        ({"max_pending_rows": -1}, {}, "", r"options: invalid max_pending_rows=-1: must not be negative"),
        ({}, {}, "metrics_top_tenants: yes\n", r"invalid metrics_top_tenants=True: expected a number"),
    ],
)
def test_bad_values_name_the_source_and_the_key(
    tmp_path: Path, options: dict[str, object], environ: dict[str, str], file_text: str, message: str
) -> None:
    config_file = write(tmp_path / "spanmeter.yaml", file_text)
    with pytest.raises(ValueError, match=message):
        ServeConfig.load(options, config_file=config_file, environ=environ)


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config file"):
        ServeConfig.load(config_file=tmp_path / "absent.yaml", environ={})


def test_the_ingest_rate_limit_is_a_number_or_unset(tmp_path: Path) -> None:
    assert ServeConfig.load(environ={}).ingest_rate_limit is None
    assert ServeConfig.load(environ={env.SPANMETER_INGEST_RATE_LIMIT: "5000"}).ingest_rate_limit == 5000
    config_file = write(tmp_path / "spanmeter.yaml", "ingest_rate_limit: 200\n")
    assert (
        ServeConfig.load({"ingest_rate_limit": 7}, config_file=config_file, environ={}).ingest_rate_limit == 7
    )
    assert ServeConfig.load(config_file=config_file, environ={}).ingest_rate_limit == 200
    with pytest.raises(ValueError, match="ingest_rate_limit must be positive"):
        ServeConfig.load(environ={env.SPANMETER_INGEST_RATE_LIMIT: "0"})
    with pytest.raises(ValueError, match="environment: invalid ingest_rate_limit"):
        ServeConfig.load(environ={env.SPANMETER_INGEST_RATE_LIMIT: "fast"})
