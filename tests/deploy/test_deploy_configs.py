"""deploy/ cannot drift: every config parses, and all of them (compose files, Dockerfiles, launch
scripts, the flex template, deploy/README.md) name the versions, images, ports and options of
deploy/versions.env, which must themselves be ones Beam 2.77 knows."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions

from pipeline.pool.pipeline import build_arg_parser as pool_arg_parser
from tests.helpers import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
FLINK_COMPOSE = REPO_ROOT / "docker-compose.yml"
SPARK_COMPOSE = DEPLOY / "spark" / "docker-compose.yml"
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))


def read_versions() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) and " " not in value, line
            values[key] = value
    return values


V = read_versions()


def compose(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def published_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        host, _, container = str(spec).partition(":")
        assert host == container, f"host and container ports differ: {spec}"
        ports.add(int(host))
    return ports


def command_options(service: dict[str, Any]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in service["command"])


def beam_option_names() -> set[str]:
    return set(PipelineOptions([]).get_all_options().keys())


# --- versions.env against Beam and pyproject -----------------------------------------------


def test_versions_are_ones_beam_publishes() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert V["BEAM_VERSION"] == apache_beam.__version__
    assert (
        f"apache-beam=={V['BEAM_VERSION']}"
        in pyproject["project"]["optional-dependencies"]["pipeline"]
    )
    assert V["MATHCORPUS_VERSION"] == pyproject["project"]["version"]
    assert V["PYTHON_VERSION"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert V["FLINK_VERSION"] in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    beam, py, flink = V["BEAM_VERSION"], V["PYTHON_VERSION"], V["FLINK_VERSION"]
    assert V["BEAM_PYTHON_SDK_IMAGE"] == f"apache/beam_python{py}_sdk:{beam}"
    assert V["BEAM_FLINK_JOB_SERVER_IMAGE"] == f"apache/beam_flink{flink}_job_server:{beam}"
    assert V["BEAM_SPARK_JOB_SERVER_IMAGE"] == f"apache/beam_spark3_job_server:{beam}"
    assert V["FLINK_IMAGE"].startswith(f"flink:{flink}.")
    assert V["SPARK_IMAGE"].startswith(f"apache/spark:{V['SPARK_VERSION']}-scala2.12")
    assert V["SPARK_VERSION"].startswith("3.")  # Beam's portable Spark runner is Spark 3
    assert V["WORKER_IMAGE"] == f"mathcorpus-worker:{V['MATHCORPUS_VERSION']}"


# --- compose files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "engine_image", "job_server_image", "worker_host", "master_option", "ui_port"),
    [
        (
            FLINK_COMPOSE,
            "FLINK_IMAGE",
            "BEAM_FLINK_JOB_SERVER_IMAGE",
            "taskmanager",
            ("flink-master", "jobmanager:{FLINK_UI_PORT}"),
            "FLINK_UI_PORT",
        ),
        (
            SPARK_COMPOSE,
            "SPARK_IMAGE",
            "BEAM_SPARK_JOB_SERVER_IMAGE",
            "spark-worker",
            ("spark-master-url", "spark://spark-master:{SPARK_MASTER_PORT}"),
            "SPARK_UI_PORT",
        ),
    ],
    ids=["flink", "spark"],
)
def test_compose_stack(
    path: Path,
    engine_image: str,
    job_server_image: str,
    worker_host: str,
    master_option: tuple[str, str],
    ui_port: str,
) -> None:
    services = compose(path)["services"]
    images = {s["image"] for s in services.values()}
    assert images == {V[engine_image], V[job_server_image], V["WORKER_IMAGE"]}
    (job_server,) = [s for s in services.values() if s["image"] == V[job_server_image]]
    options = command_options(job_server)
    assert options[master_option[0]] == master_option[1].format(**V)
    assert options["job-host"] == "0.0.0.0"
    assert options["job-port"] == V["JOB_PORT"]
    assert options["artifact-port"] == V["ARTIFACT_PORT"]
    assert options["expansion-port"] == V["EXPANSION_PORT"]
    assert options["artifacts-dir"] == V["ARTIFACTS_DIR"]
    assert published_ports(job_server) == {
        int(V["JOB_PORT"]),
        int(V["ARTIFACT_PORT"]),
        int(V["EXPANSION_PORT"]),
    }
    all_ports = set().union(*(published_ports(s) for s in services.values()))
    assert int(V[ui_port]) in all_ports

    hosts = {name for name in services if name.startswith(worker_host)}
    pools = {name: s for name, s in services.items() if s["image"] == V["WORKER_IMAGE"]}
    assert len(hosts) >= 2
    # Exactly one worker pool in each worker host's network namespace (localhost:50000).
    assert sorted(p["network_mode"] for p in pools.values()) == sorted(
        f"service:{h}" for h in hosts
    )
    artifacts_mount = f"{V['ARTIFACTS_DIR']}"
    for name in [*hosts, next(n for n, s in services.items() if s is job_server)]:
        mounts = [str(v).split(":", 1)[1] for v in services[name].get("volumes", [])]
        assert artifacts_mount in mounts, f"{name} does not share {artifacts_mount}"
    for pool in pools.values():
        assert pool["command"] == ["--worker_pool"]
        (data,) = pool["volumes"]
        # The same absolute path as the driver's: `${MATHCORPUS_DATA...}:${MATHCORPUS_DATA...}`.
        same_path = re.fullmatch(r"(\$\{MATHCORPUS_DATA:-/[^}]+\}):\1", data)
        assert same_path, data
    built = [p for p in pools.values() if "build" in p]
    assert len(built) == 1
    dockerfile = (path.parent / built[0]["build"]["context"]) / built[0]["build"]["dockerfile"]
    assert dockerfile.resolve() == (DEPLOY / "worker" / "Dockerfile").resolve()


def test_worker_pool_port_is_the_sdk_default() -> None:
    # `boot --worker_pool` listens on 50000; nothing in the stacks can change it.
    assert V["WORKER_POOL_PORT"] == "50000"


# --- Dockerfiles -----------------------------------------------------------------------------


def dockerfile_args(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), flags=re.M))


def test_dockerfiles_pin_versions_env_images_and_copy_existing_paths() -> None:
    worker = DEPLOY / "worker" / "Dockerfile"
    flex = DEPLOY / "dataflow" / "flex_template" / "Dockerfile"
    assert dockerfile_args(worker)["BEAM_PYTHON_SDK_IMAGE"] == V["BEAM_PYTHON_SDK_IMAGE"]
    assert dockerfile_args(flex)["WORKER_IMAGE"] == V["WORKER_IMAGE"]
    for path in (worker, flex):
        ignore = Path(f"{path}.dockerignore").read_text().splitlines()
        for line in path.read_text().splitlines():
            if line.startswith("COPY") and "--from=" not in line:
                *sources, _ = shlex.split(line)[1:]
                for source in sources:
                    assert (REPO_ROOT / source).exists(), f"{path.name}: {source} is missing"
                    allowed = {f"!{source}", f"!{source.rstrip('/')}/**"}
                    assert allowed & set(ignore), f"{path.name}.dockerignore excludes {source}"


# --- shell scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(s.relative_to(DEPLOY)) for s in SCRIPTS])
def test_script_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


def run_with_stub(script: Path, args: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    """Run a deploy script with a stub `mathcorpus` first on PATH; return the argv it got."""
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv.json"
    stub = stub_dir / "mathcorpus"
    stub.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n"
    )
    stub.chmod(0o755)
    full_env = {**os.environ, **env, "PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(script), *args], env=full_env, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return json.loads(record.read_text())


def split_stage_args(argv: list[str]) -> tuple[Any, list[str]]:
    stage, *rest = argv
    assert stage == "pool"
    return pool_arg_parser().parse_known_args(rest)


POOL_ARGS = ["pool", "--input", "/data/crawl/a.warc.gz", "/data/b.warc.gz", "--output", "/data/p"]


@pytest.mark.parametrize("engine", ["flink", "spark"])
def test_submit_scripts_pass_the_portable_options(engine: str, tmp_path: Path) -> None:
    argv = run_with_stub(DEPLOY / engine / "submit.sh", POOL_ARGS, {}, tmp_path)
    app, beam_args = split_stage_args(argv)
    assert app.inputs == ["/data/crawl/a.warc.gz", "/data/b.warc.gz"] and app.output == "/data/p"
    assert {a.split("=", 1)[0].removeprefix("--") for a in beam_args} <= beam_option_names()
    options = PipelineOptions(beam_args).get_all_options()
    assert options["runner"] == "PortableRunner"
    assert options["job_endpoint"] == f"localhost:{V['JOB_PORT']}"
    assert options["environment_type"] == "EXTERNAL"
    assert options["environment_config"] == f"localhost:{V['WORKER_POOL_PORT']}"
    # The README and the compose file's header show the same command.
    for doc in (DEPLOY / "README.md", FLINK_COMPOSE, SPARK_COMPOSE):
        text = doc.read_text()
        for arg in ("--runner=PortableRunner", "--environment_type=EXTERNAL"):
            assert arg in text
        assert f"--job_endpoint=localhost:{V['JOB_PORT']}" in text, doc
        assert f"--environment_config=localhost:{V['WORKER_POOL_PORT']}" in text, doc


@pytest.mark.parametrize(
    ("stage", "machine"),
    [("pool", "n2-highcpu-16"), ("dedup", "n2-standard-16"), ("mine", "n2-highcpu-16")],
)
def test_dataflow_launch_options_are_beam_options(stage: str, machine: str, tmp_path: Path) -> None:
    env = {"PROJECT": "proj", "REGION": "europe-west4", "BUCKET": "bkt"}
    argv = run_with_stub(DEPLOY / "dataflow" / "launch.sh", [stage, *POOL_ARGS[1:]], env, tmp_path)
    app, beam_args = split_stage_args(["pool", *argv[1:]])
    assert argv[0] == stage
    assert app.output == "/data/p" and len(app.inputs) == 2
    names = {a.split("=", 1)[0].removeprefix("--") for a in beam_args}
    assert names <= beam_option_names(), names - beam_option_names()
    o = PipelineOptions(beam_args).get_all_options()
    assert o["runner"] == "DataflowRunner"
    assert (o["project"], o["region"]) == ("proj", "europe-west4")
    assert o["temp_location"] == "gs://bkt/dataflow/temp"
    assert o["staging_location"] == "gs://bkt/dataflow/staging"
    assert o["machine_type"] == machine
    assert o["autoscaling_algorithm"] == "THROUGHPUT_BASED"
    assert o["max_num_workers"] == 100 and o["disk_size_gb"] == 50
    assert {"use_runner_v2", "shuffle_mode=service"} <= set(o["experiments"])
    image = f"europe-west4-docker.pkg.dev/proj/mathcorpus/{V['WORKER_IMAGE']}"
    assert (o["sdk_container_image"], o["sdk_location"]) == (image, "container")


def test_dataflow_launch_without_container_uses_the_requirements(tmp_path: Path) -> None:
    env = {"PROJECT": "p", "REGION": "us-central1", "BUCKET": "b", "DEPS": "requirements"}
    argv = run_with_stub(DEPLOY / "dataflow" / "launch.sh", POOL_ARGS, env, tmp_path)
    o = PipelineOptions(split_stage_args(argv)[1]).get_all_options()
    assert o["setup_file"] == str(REPO_ROOT / "pyproject.toml")
    assert o["requirements_file"] == str(DEPLOY / "dataflow" / "requirements.txt")
    assert o["sdk_container_image"] is None


def test_dataflow_launch_refuses_missing_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"PROJECT", "REGION", "BUCKET"}}
    result = subprocess.run(
        ["bash", str(DEPLOY / "dataflow" / "launch.sh"), *POOL_ARGS],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "PROJECT" in result.stderr


def test_requirements_equal_the_pipeline_extra() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    extra = [r for r in pyproject["project"]["optional-dependencies"]["pipeline"]]
    lines = (DEPLOY / "dataflow" / "requirements.txt").read_text().splitlines()
    listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert listed == [r for r in extra if not r.startswith("apache-beam")]


# --- flex template ---------------------------------------------------------------------------


def flex_main() -> Any:
    path = DEPLOY / "dataflow" / "flex_template" / "main.py"
    spec = importlib.util.spec_from_file_location("mathcorpus_flex_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flex_metadata_parameters_are_stage_options() -> None:
    main = flex_main()
    metadata = json.loads((DEPLOY / "dataflow" / "flex_template" / "metadata.json").read_text())
    names = [p["name"] for p in metadata["parameters"]]
    assert len(names) == len(set(names))
    for p in metadata["parameters"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", p["name"]) and p["label"] and p["helpText"]
        for regex in p.get("regexes", []):
            re.compile(regex)
    stage_param = next(p for p in metadata["parameters"] if p["name"] == "stage")
    assert not stage_param.get("isOptional")
    for stage in main.STAGE_MODULES:
        assert re.fullmatch(stage_param["regexes"][0], stage)
    options: set[str] = set()
    for module in main.STAGE_MODULES.values():
        parser = importlib.import_module(module).build_arg_parser()
        options |= {o for a in parser._actions for o in a.option_strings}
    for name in names:
        if name != "stage":
            assert "--" + name.replace("_", "-") in options, name


def test_flex_parameters_become_stage_options() -> None:
    main = flex_main()
    params = [
        "--input=gs://b/c/a.warc.gz,gs://b/c/b.warc.gz",
        "--output=gs://b/pool",
        "--languages=en,zh",
        "--min_text_chars=50",
        "--overwrite=true",
        "--temp_location=gs://b/tmp",
        "--runner=DataflowRunner",
    ]
    argv = main.stage_argv("pool", params)
    app, beam_args = pool_arg_parser().parse_known_args(argv)
    assert app.inputs == ["gs://b/c/a.warc.gz", "gs://b/c/b.warc.gz"]
    assert app.languages == ["en", "zh"] and app.min_text_chars == 50 and app.overwrite
    assert beam_args == ["--temp_location=gs://b/tmp", "--runner=DataflowRunner"]
    assert "--overwrite" not in main.stage_argv("pool", ["--output=x", "--overwrite=false"])


# --- README ----------------------------------------------------------------------------------


def test_readme_names_the_pinned_images_and_extras() -> None:
    text = (DEPLOY / "README.md").read_text()
    for key in (
        "BEAM_PYTHON_SDK_IMAGE",
        "WORKER_IMAGE",
        "FLINK_IMAGE",
        "BEAM_FLINK_JOB_SERVER_IMAGE",
        "SPARK_IMAGE",
        "BEAM_SPARK_JOB_SERVER_IMAGE",
    ):
        assert V[key] in text, key
    assert f"Flink\n{V['FLINK_VERSION']}" in text or f"Flink {V['FLINK_VERSION']}" in text
    assert "mathcorpus[pipeline,gcp]" in text and "mathcorpus[pipeline,aws]" in text
    # No other image tag of ours or Beam's sneaks into the page.
    tags = set(
        re.findall(r"(?:apache/beam_\w+|flink|apache/spark|mathcorpus-worker):[\w.-]+", text)
    )
    assert tags <= {V[k] for k in V}, tags - {V[k] for k in V}


def test_readme_cost_tables_are_the_cost_model_output() -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        import cost_model
    finally:
        sys.path.remove(str(DEPLOY))
    text = (DEPLOY / "README.md").read_text()
    block = text.split("<!-- cost-model:begin -->\n")[1].split("\n<!-- cost-model:end -->")[0]
    assert block == cost_model.render_markdown()
    assert 0 < cost_model.shuffle_bytes_per_page() < 1024
