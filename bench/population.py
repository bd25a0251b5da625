"""Request bodies for the load tests, drawn from the synthetic population.

The population (``regfed.demo.populate``) is a pure function of (index, seed), so the
bodies are written without reading the database:

- ``issue.jsonl`` / ``issue.json``: an ``IssueRequest`` for each of people 0..N-1, no QR
  image (keyed by SNILS, as the portal asks);
- ``issue_png.jsonl`` / ``issue_png.json``: the same asking for a PNG image;
- ``verify.jsonl`` / ``verify.json``: ``VerifyRequest`` bodies with real codes, obtained by
  calling ``Issue`` once for a sample of people before the measurement (needs a server).

``.jsonl`` files (one body per line) feed ``bench/loadgen.py``; ``.json`` files (one JSON
array) feed ghz, which cycles through an array of bodies.

    .venv/bin/python bench/population.py --people 100000 --out .regfed/bench/data
    .venv/bin/python bench/population.py --people 100000 --out .regfed/bench/data \\
        --verify-from 127.0.0.1:50051
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from regfed.demo.populate import population_person

DEFAULT_SEED = 1
DEFAULT_OUT = Path(".regfed/bench/data")


def issue_bodies(
    people: int, seed: int, *, png: bool = False, start: int = 0
) -> Iterator[dict[str, Any]]:
    """IssueRequest bodies (JSON form) for people 0..people-1 of the population, from
    person ``start`` on (wrapping round)."""
    for step in range(people):
        index = (start + step) % people
        body: dict[str, Any] = {"person": population_person(index, seed).request_person()}
        if png:
            body["qr_format"] = "QR_FORMAT_PNG"
        yield body


def write_bodies(out: Path, name: str, bodies: Iterable[dict[str, Any]]) -> int:
    """``<name>.jsonl`` and ``<name>.json`` (an array, for ghz) in ``out``; the count."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    jsonl, array = out / f"{name}.jsonl", out / f"{name}.json"
    with (
        (jsonl.with_suffix(".jsonl.tmp")).open("w", encoding="utf-8") as lines,
        (array.with_suffix(".json.tmp")).open("w", encoding="utf-8") as whole,
    ):
        whole.write("[\n")
        for body in bodies:
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            lines.write(text + "\n")
            whole.write(("," if count else "") + text + "\n")
            count += 1
        whole.write("]\n")
    jsonl.with_suffix(".jsonl.tmp").replace(jsonl)
    array.with_suffix(".json.tmp").replace(array)
    return count


def write_issue_bodies(out: Path, people: int, seed: int) -> dict[str, Path]:
    """The Issue bodies, with and without a PNG image; the .jsonl paths by call name."""
    write_bodies(out, "issue", issue_bodies(people, seed))
    write_bodies(out, "issue_png", issue_bodies(people, seed, png=True))
    return {"Issue": out / "issue.jsonl", "IssuePng": out / "issue_png.jsonl"}


async def collect_codes(
    target: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int = 8,
    deadline: float = 10,
    metadata: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """Call Issue once for each body (with ``metadata``: a bearer token when the server
    wants one); the QR texts of the certificates issued."""
    import grpc
    from google.protobuf import json_format

    from regfed.v1 import certificate_service_pb2 as pb
    from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

    codes: list[str] = []
    todo = iter(bodies)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.CertificateServiceStub(channel)

        async def worker() -> None:
            for body in todo:
                request = json_format.ParseDict(body, pb.IssueRequest())
                request.qr_format = pb.QR_FORMAT_UNSPECIFIED
                try:
                    response = await stub.Issue(request, timeout=deadline, metadata=metadata)
                except grpc.aio.AioRpcError:
                    continue
                if response.outcome == pb.OUTCOME_ISSUED:
                    codes.append(response.certificate.qr_payload)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return codes


async def write_verify_bodies(
    out: Path,
    target: str,
    people: int,
    seed: int,
    sample: int,
    deadline: float = 10,
    metadata: tuple[tuple[str, str], ...] = (),
) -> int:
    """``verify.jsonl``/``.json``: real codes for a sample of people spread over the
    population; the number of bodies written."""
    step = max(1, people // max(1, sample))
    bodies = [
        {"person": population_person(index, seed).request_person()}
        for index in range(0, people, step)
    ][:sample]
    codes = await collect_codes(target, bodies, deadline=deadline, metadata=metadata)
    if not codes:
        raise RuntimeError("no certificate was issued for the sample: nothing to verify")
    return write_bodies(out, "verify", ({"qr_payload": code} for code in codes))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description="write load-test request bodies")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--verify-from", metavar="HOST:PORT", help="loopback regfed to ask")
    parser.add_argument("--verify-sample", type=int, default=2_000)
    args = parser.parse_args(argv)
    write_issue_bodies(args.out, args.people, args.seed)
    print(f"wrote Issue bodies for {args.people} people to {args.out}")
    if args.verify_from:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from loadgen import check_loopback

        check_loopback(args.verify_from)
        count = asyncio.run(
            write_verify_bodies(
                args.out, args.verify_from, args.people, args.seed, args.verify_sample
            )
        )
        print(f"wrote {count} Verify bodies to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
