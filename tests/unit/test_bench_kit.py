"""The load-testing kit in bench/: its request bodies, its target check, its statistics."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from regfed.v1 import certificate_service_pb2 as pb

BENCH = Path(__file__).resolve().parents[2] / "bench"
GHZ = BENCH / "ghz"
SERVICE = pb.DESCRIPTOR.services_by_name["CertificateService"]


def load(name: str) -> ModuleType:
    """A bench/ script as a module (bench/ is not a package; its folder goes on sys.path,
    as when the scripts run, so spawned client processes can import it too)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


loadgen = load("loadgen")
population = load("population")
backlog = load("backlog")
echo_server = load("echo_server")


def request_class(call: str) -> type[Message]:
    """The request message class of a CertificateService method."""
    cls: type[Message] = getattr(pb, SERVICE.methods_by_name[call].input_type.name)
    return cls


def parse_strictly(body: Any, cls: type[Message]) -> Message:
    """``body`` parsed as ``cls`` with unknown fields refused."""
    return json_format.Parse(json.dumps(body), cls(), ignore_unknown_fields=False)


def test_ghz_configs_name_real_methods_and_their_bodies() -> None:
    """Each ghz config calls a method of the current protos, at concurrency 64, with data
    from a body file the kit writes, and a checked-in sample exists for it."""
    configs = sorted(GHZ.glob("*.json"))
    assert {c.stem for c in configs} == {"issue", "issue_png", "verify"}
    for path in configs:
        config = json.loads(path.read_text(encoding="utf-8"))
        service, _, method = config["call"].rpartition(".")
        assert service == SERVICE.full_name
        assert method in SERVICE.methods_by_name
        assert config["concurrency"] == 64
        assert config["data-file"] == f".regfed/bench/data/{path.stem}.json"
        loadgen.check_loopback(config["host"])
        assert (GHZ / "samples" / path.name).exists()


@pytest.mark.parametrize("name", ["issue", "issue_png", "verify"])
def test_every_sample_body_parses_as_the_request(name: str) -> None:
    """Every body in the checked-in ghz samples is a valid request of the current protos."""
    config = json.loads((GHZ / f"{name}.json").read_text(encoding="utf-8"))
    cls = request_class(config["call"].rpartition(".")[2])
    bodies = json.loads((GHZ / "samples" / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(bodies, list)
    assert bodies
    for body in bodies:
        message = parse_strictly(body, cls)
        assert message.ByteSize() > 0


def test_generated_population_bodies_parse_as_requests(tmp_path: Path) -> None:
    """Freshly written Issue bodies (JSONL for loadgen, an array for ghz) parse strictly,
    carry valid identifiers, and the PNG variant asks for a PNG."""
    paths = population.write_issue_bodies(tmp_path, 300, 1)
    for name, png in (("issue", False), ("issue_png", True)):
        lines = (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        array = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert len(lines) == len(array) == 300
        for line, body in zip(lines, array, strict=True):
            assert json.loads(line) == body
            request = parse_strictly(body, pb.IssueRequest)
            assert isinstance(request, pb.IssueRequest)
            assert (request.qr_format == pb.QR_FORMAT_PNG) is png
            assert len(request.person.snils) == 11
    assert len(loadgen.load_bodies(paths["Issue"], "Issue")) == 300
    verify = tmp_path / "verify.jsonl"
    population.write_bodies(tmp_path, "verify", [{"qr_payload": "HC1:EXAMPLE"}])
    assert loadgen.load_bodies(verify, "Verify") == [
        pb.VerifyRequest(qr_payload="HC1:EXAMPLE").SerializeToString()
    ]


def test_backlog_bodies_are_applications_of_people_outside_the_population() -> None:
    """The backlog's bodies parse as SubmitApplicationRequest, with a category and a
    contact, for people past the last populated index (so no registry knows them)."""
    from regfed.api.validation import application_submission

    bodies = list(backlog.backlog_bodies(300, 1, 50))
    populated = {b["person"]["snils"] for b in population.issue_bodies(300, 1)}
    assert len(bodies) == 50
    for body in bodies:
        request = parse_strictly(body, pb.SubmitApplicationRequest)
        assert isinstance(request, pb.SubmitApplicationRequest)
        application_submission(request, date(2026, 12, 2))  # valid as the server sees it
        assert request.person.snils not in populated


def test_loadgen_refuses_a_body_that_is_not_the_request(tmp_path: Path) -> None:
    """A body with a field the request message lacks stops the run before it starts."""
    data = tmp_path / "bad.jsonl"
    data.write_text('{"person": {"snils": "10000000009"}, "colour": "red"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        loadgen.load_bodies(data, "Issue")


@pytest.mark.parametrize(
    "target", ["127.0.0.1:50051", "127.3.2.1:1", "localhost:50051", "[::1]:50051"]
)
def test_loadgen_accepts_loopback_targets(target: str) -> None:
    """Loopback addresses and localhost are accepted as they are."""
    assert loadgen.check_loopback(target) == target


@pytest.mark.parametrize(
    "target",
    ["10.0.0.1:50051", "0.0.0.0:50051", "example.com:443", "[::2]:80", "127.0.0.1", "h:0"],
)
def test_loadgen_refuses_non_loopback_targets(target: str) -> None:
    """Anything but 127.0.0.0/8, ::1 and localhost (or not host:port) is refused."""
    with pytest.raises(loadgen.RefusedTarget):
        loadgen.check_loopback(target)


def test_loadgen_command_line_refuses_a_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    """The command line stops with a usage error before any call is made."""
    with pytest.raises(SystemExit) as stopped:
        loadgen.main(["--target", "192.0.2.1:50051", "--call", "Echo", "--total", "1"])
    assert stopped.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_loadgen_command_line_refuses_an_unbounded_run() -> None:
    """Neither --total nor --duration: refused, every run is bounded."""
    with pytest.raises(SystemExit):
        loadgen.main(["--target", "127.0.0.1:50051", "--call", "Echo"])


def test_percentiles_on_a_known_list() -> None:
    """Nearest-rank percentiles of 1..100 are the values themselves; of 1..10, rounded up."""
    hundred = [float(v) for v in range(1, 101)]
    assert [loadgen.percentile(hundred, p) for p in (0, 50, 90, 95, 99, 100)] == [
        1.0, 50.0, 90.0, 95.0, 99.0, 100.0,
    ]  # fmt: skip
    ten = [float(v) for v in range(1, 11)]
    assert [loadgen.percentile(ten, p) for p in (50, 90, 95, 99)] == [5.0, 9.0, 10.0, 10.0]
    assert loadgen.percentile([7.0], 99) == 7.0


def test_summary_figures() -> None:
    """Count, rate, average, extremes and percentiles in milliseconds from seconds."""
    latencies = [0.010, 0.030, 0.020, 0.040]  # unordered on purpose
    summary = loadgen.summarise("Issue", latencies, {"OK": 3, "UNAVAILABLE": 1}, 2.0)
    assert summary.count == 4
    assert summary.rps == 2.0
    assert summary.average_ms == 25.0
    assert (summary.fastest_ms, summary.slowest_ms) == (10.0, 40.0)
    assert (summary.p50_ms, summary.p90_ms, summary.p99_ms) == (20.0, 40.0, 40.0)
    assert summary.status == {"OK": 3, "UNAVAILABLE": 1}
    assert "Requests/sec: 2.00" in loadgen.format_summary(summary)


async def test_loadgen_runs_a_bounded_count_against_the_echo_server() -> None:
    """A short run against the echo baseline makes exactly --total calls, all OK."""
    server, port = await echo_server.start_echo_server("127.0.0.1:0")
    try:
        summary = await asyncio.to_thread(
            loadgen.run_load,
            target=f"127.0.0.1:{port}",
            call="Echo",
            bodies=[b"abc", b"defg"],
            concurrency=4,
            connections=2,
            processes=1,
            total=200,
            duration=None,
            warmup=0.0,
            timeout=10.0,
            max_duration=60.0,
        )
    finally:
        await server.stop(None)
    assert summary.count == 200
    assert summary.status == {"OK": 200}
    assert summary.connections == 2


def test_instruction_counts_leave_out_the_servers_background_work() -> None:
    """Per call: the pass's instructions less what the server did as long with no call."""
    instructions = load("instructions")
    count = instructions.Count(
        calls=1000,
        instructions=3_700_000_000,
        seconds=50.0,
        idle_instructions=2_000_000_000,
        idle_seconds=40.0,
    )
    assert count.idle_per_second == 50_000_000
    assert count.per_call == 1_200_000  # (3.7e9 - 50e6 * 50) / 1000


@pytest.mark.parametrize("calls", ["0", "20001"])
def test_instruction_counts_are_bounded(calls: str) -> None:
    """Every pass is bounded: --calls outside 1..20,000 is a usage error."""
    instructions = load("instructions")
    with pytest.raises(SystemExit) as stopped:
        instructions.parse_args(["--calls", calls])
    assert stopped.value.code == 2
