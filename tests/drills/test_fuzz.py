"""Hostile input through every RPC: mutated codes through Verify, and requests generated
from the proto descriptors (hypothesis) through every method, some of them as broken
bytes. Only answers and INVALID_ARGUMENT (or the method's documented refusals), never
INTERNAL or UNKNOWN, and no call over a second."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as pd
from google.protobuf import message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.drills.conftest import Population, record
from tests.drills.load import issue_request, person_message, spread
from tests.drills.server import ServerProcess, server_env

pytestmark = pytest.mark.postgres

SERVICE = pb.DESCRIPTOR.services_by_name["CertificateService"]
NEVER = {"INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED"}
ALLOWED = {
    "Issue": {"OK", "INVALID_ARGUMENT"},
    "Verify": {"OK", "INVALID_ARGUMENT"},
    "GetTrustList": {"OK", "INVALID_ARGUMENT"},
    "GetStats": {"OK", "INVALID_ARGUMENT"},
    "Revoke": {"OK", "INVALID_ARGUMENT", "NOT_FOUND"},
    # Applications are in the contract; until they are served, UNIMPLEMENTED.
    "SubmitApplication": {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED"},
    "GetApplication": {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED"},
}
SLOWEST = 1.0  # seconds: no call may take longer
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@pytest.fixture(scope="module")
async def fuzz_server(
    population: Population,
    create_database: CreateDatabase,
    keys_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServerProcess]:
    """One server for the fuzz drills."""
    home = tmp_path_factory.mktemp("fuzz-home")
    server = ServerProcess(
        server_env(
            home,
            keys_dir,
            store=await create_database(),
            city=population.city,
            federal=population.federal,
        )
    )
    await server.start()
    yield server
    assert await server.stop() == 0
    assert server.count("Traceback") == 0, server.log


async def send_all(
    server: ServerProcess, requests: Sequence[tuple[str, bytes]], concurrency: int = 16
) -> tuple[Counter[tuple[str, str]], list[float]]:
    """Send serialized requests (method, bytes) ``concurrency`` at a time; the codes by
    method and every latency."""
    outcomes: Counter[tuple[str, str]] = Counter()
    latencies: list[float] = []
    metadata = (("authorization", f"Bearer {server.operator_token}"),)
    queue = iter(requests)
    async with grpc.aio.insecure_channel(server.target) as channel:
        calls: dict[str, Any] = {
            m.name: channel.unary_unary(f"/{SERVICE.full_name}/{m.name}") for m in SERVICE.methods
        }

        async def worker() -> None:
            for method, body in queue:
                started = time.monotonic()
                try:
                    await calls[method](body, timeout=10, metadata=metadata)
                    code = "OK"
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                latencies.append(time.monotonic() - started)
                outcomes[(method, code)] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes, latencies


def check(outcomes: Counter[tuple[str, str]], latencies: list[float]) -> None:
    """Only allowed codes, never INTERNAL/UNKNOWN, no call over a second."""
    for (method, code), count in outcomes.items():
        assert code not in NEVER, (method, code, count)
        assert code in ALLOWED[method], (method, code, count)
    assert max(latencies) < SLOWEST, max(latencies)


# --- mutated codes through Verify ---------------------------------------------------------


def mutate(code: str, rng: random.Random) -> str:
    """One to three random edits of a code's text."""
    text = code
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(9)
        at = rng.randrange(len(text) + 1)
        if kind == 0 and text:  # substitute from the base45 alphabet
            text = text[:at] + rng.choice(BASE45) + text[at + 1 :]
        elif kind == 1:  # insert any character
            text = (
                text[:at]
                + chr(rng.choice((rng.randrange(32, 127), rng.randrange(0x80, 0x2FFF))))
                + text[at:]
            )
        elif kind == 2:  # delete a run
            text = text[:at] + text[at + rng.randint(1, 8) :]
        elif kind == 3:  # truncate
            text = text[:at]
        elif kind == 4:  # duplicate a slice
            end = min(len(text), at + rng.randint(1, 200))
            text = text[:end] + text[at:end] + text[end:]
        elif kind == 5:  # another prefix
            text = rng.choice(("", "hc1:", "HC2:", "HC1", "HC1:HC1:", " HC1:")) + text.removeprefix(
                "HC1:"
            )
        elif kind == 6:  # flip one character to its neighbour
            if text:
                spot = rng.randrange(len(text))
                text = text[:spot] + chr((ord(text[spot]) + 1) % 0x10FFFF or 1) + text[spot + 1 :]
        elif kind == 7:  # junk appended
            text += "".join(rng.choice(BASE45) for _ in range(rng.randint(1, 30)))
        else:  # swap halves
            text = text[at:] + text[:at]
    if "\ud800" <= text[-1:] <= "\udfff":
        text = text[:-1]
    return "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff") or "HC1:"


async def issued_codes(server: ServerProcess, population: Population) -> list[str]:
    """A few real codes to mutate."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub: Any = pb_grpc.CertificateServiceStub(channel)
        replies = await asyncio.gather(
            *(stub.Issue(issue_request(p), timeout=10) for p in population.eligible("both")[:6])
        )
    return [r.certificate.qr_payload for r in replies]


async def verify_mutations(
    name: str, server: ServerProcess, population: Population, count: int
) -> None:
    """``count`` mutated codes through Verify, checked and recorded."""
    rng = random.Random(9)
    codes = await issued_codes(server, population)
    requests = []
    for n in range(count):
        text = mutate(codes[n % len(codes)], rng)
        if n % 997 == 0:
            text = text * (9000 // max(1, len(text)) + 1)  # oversized: INVALID_ARGUMENT
        requests.append(("Verify", pb.VerifyRequest(qr_payload=text).SerializeToString()))
    outcomes, latencies = await send_all(server, requests, concurrency=24)
    check(outcomes, latencies)
    record(name, "calls by code", {code: n for (_, code), n in outcomes.items()})
    record(name, "p50 / p99 / max latency, s", spread(latencies))


async def test_mutated_codes_through_verify_quick(
    fuzz_server: ServerProcess, population: Population
) -> None:
    """2,000 mutated codes: each gets a verdict (or INVALID_ARGUMENT when oversized)."""
    await verify_mutations("fuzz: 2,000 mutated codes (quick)", fuzz_server, population, 2_000)


@pytest.mark.drill
async def test_mutated_codes_through_verify(
    fuzz_server: ServerProcess, population: Population
) -> None:
    """10^5 mutated codes through Verify."""
    await verify_mutations("fuzz: 100,000 mutated codes", fuzz_server, population, 100_000)


# --- requests generated from the descriptors ------------------------------------------------

_INTS = {
    pd.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    pd.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    pd.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    pd.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    pd.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    pd.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    pd.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    pd.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    pd.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    pd.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def strings(population: Population) -> st.SearchStrategy[str]:
    """Any text, and text shaped like what the fields expect (identifiers, dates, names,
    codes, UVCIs)."""
    person = population.people[0]
    shaped = st.sampled_from(
        [
            person.snils,
            f"{person.snils[:3]}-{person.snils[3:6]}-{person.snils[6:9]} {person.snils[9:]}",
            person.birth_date.isoformat(),
            "1985-02-30",
            person.last_name,
            "Ёлкина-Иванова",
            "4510 123456",
            "7700000000000011",
            "URN:UVCI:01:RU:" + "A" * 20,
            "HC1:NCFOXN%TS3DH",
            "\x00",
            "A" * 101,
        ]
    )
    return st.one_of(st.text(st.characters(codec="utf-8"), max_size=40), shaped)


def field_strategy(
    field: pd.FieldDescriptor, population: Population, depth: int
) -> st.SearchStrategy[Any]:
    """Values for one field, from its type."""
    kind = field.type
    if kind == pd.FieldDescriptor.TYPE_STRING:
        return strings(population)
    if kind == pd.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == pd.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in _INTS:
        low, high = _INTS[kind]
        return st.integers(low, high)
    if kind in (pd.FieldDescriptor.TYPE_DOUBLE, pd.FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if kind == pd.FieldDescriptor.TYPE_FLOAT else 64)
    if kind == pd.FieldDescriptor.TYPE_ENUM:
        # proto3 enums are open: any int32 may arrive.
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    assert field.message_type is not None
    return message_strategy(field.message_type, population, depth + 1)


def message_strategy(
    descriptor: pd.Descriptor, population: Population, depth: int = 0
) -> st.SearchStrategy[message.Message]:
    """Messages of ``descriptor``'s type, any subset of fields set, from the descriptor."""
    cls = GetMessageClass(descriptor)
    if depth > 3:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        values = field_strategy(field, population, depth)
        if field.is_repeated:
            values = st.lists(values, max_size=3)
        fields[field.name] = values

    def build(values: dict[str, Any]) -> message.Message:
        built = cls()
        for name, value in values.items():
            target: Any = getattr(built, name)
            if isinstance(value, list):
                target.extend(value)
            elif descriptor.fields_by_name[name].message_type is not None:
                target.CopyFrom(value)
            else:
                setattr(built, name, value)
        return built

    return st.fixed_dictionaries({}, optional=fields).map(build)


def issue_strategy(population: Population) -> st.SearchStrategy[message.Message]:
    """IssueRequests for real people, some of their fields replaced by generated values."""
    people = st.sampled_from(population.people[:50]).map(person_message)
    generated = message_strategy(pb.Person.DESCRIPTOR, population)

    def blend(person: pb.Person, other: pb.Person, fields: list[str]) -> pb.IssueRequest:
        for name in fields:
            setattr(person, name, getattr(other, name))
        return pb.IssueRequest(person=person)

    names = [f.name for f in pb.Person.DESCRIPTOR.fields]
    return st.builds(blend, people, generated, st.lists(st.sampled_from(names), max_size=3))


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` values drawn by hypothesis (generation only: nothing fails, so nothing
    is shrunk)."""
    drawn: list[Any] = []

    @hypothesis_seed(9)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    # A small space (an empty message has one value) runs out before ``count``: repeat it
    # (the corrupted copies still differ).
    return [drawn[n % len(drawn)] for n in range(count)]


def corrupt(body: bytes, rng: random.Random) -> bytes:
    """The serialized request with bytes flipped, cut or appended."""
    data = bytearray(body or b"\x00")
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(3)
        if choice == 0:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1:
            del data[rng.randrange(len(data)) :]
            data = data or bytearray(b"\x0a")
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(data)


async def generated_requests(
    name: str, server: ServerProcess, population: Population, count: int
) -> None:
    """``count`` generated requests through every RPC, checked and recorded."""
    rng = random.Random(9)
    methods = len(SERVICE.methods)
    requests: list[tuple[str, bytes]] = []
    for index, method in enumerate(SERVICE.methods):
        per_method = count // methods + (index < count % methods)
        strategy = (
            st.one_of(issue_strategy(population), message_strategy(method.input_type, population))
            if method.name == "Issue"
            else message_strategy(method.input_type, population)
        )
        for n, request in enumerate(generate(strategy, per_method)):
            body = request.SerializeToString()
            requests.append((method.name, corrupt(body, rng) if n % 10 == 9 else body))
    rng.shuffle(requests)
    outcomes, latencies = await send_all(server, requests)
    check(outcomes, latencies)
    by_code = Counter[str]()
    for (_, code), n in outcomes.items():
        by_code[code] += n
    record(name, "requests sent", len(requests))
    record(name, "calls by code", dict(by_code))
    record(name, "p50 / p99 / max latency, s", spread(latencies))


async def test_generated_requests_through_every_rpc_quick(
    fuzz_server: ServerProcess, population: Population
) -> None:
    """700 requests generated from the descriptors (every tenth corrupted) through every
    RPC."""
    await generated_requests("fuzz: 700 generated requests (quick)", fuzz_server, population, 700)


@pytest.mark.drill
async def test_generated_requests_through_every_rpc(
    fuzz_server: ServerProcess, population: Population
) -> None:
    """10^4 requests generated from the descriptors through every RPC."""
    await generated_requests("fuzz: 10,000 generated requests", fuzz_server, population, 10_000)
