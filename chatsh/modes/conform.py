"""``chatsh conform``: check a server against the protocol, case by case."""

from __future__ import annotations

import json
import socket
import ssl
import sys
from dataclasses import asdict, dataclass
from xml.etree import ElementTree

from ..conform.cases import Context
from ..conform.runner import RESULTS, Outcome, run_all, select, server_notes
from ..sanitize import sanitize
from ..tls import TlsError, TlsSocket

COUNTED = {"passed": "pass", "failed": "fail", "warnings": "warn", "skipped": "skip",
           "not_run": "not run"}
MARKS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "skip"}


@dataclass
class ConformOptions:
    timeout: float = 5.0
    max_clients: int | None = None
    patterns: list[str] | None = None
    as_json: bool = False
    peer: tuple[str, int] | None = None
    strict: bool = False
    profile: str = "protocol"
    junit: str | None = None
    tls: ssl.SSLContext | None = None


def _line(outcome: Outcome, width: int) -> str:
    level = "" if outcome.level == "required" else f" ({outcome.level})"
    return (f"{outcome.id:<{width}}  {MARKS[outcome.result]}  {outcome.seconds:6.3f}s  "
            f"{outcome.name}{level}")


def _details(outcome: Outcome) -> list[str]:
    lines = [f"    ({note})" for note in outcome.notes]
    if outcome.result in ("fail", "warn"):
        lines += [f"    sent:     {sent}" for sent in outcome.sent[-5:]]
        lines += [f"    expected: {outcome.expected}", f"    got:      {outcome.got}"]
    elif outcome.got:
        lines.append(f"    ({outcome.got})")
    return lines


def summary(outcomes: list[Outcome]) -> str:
    counts = {result: sum(o.result == result for o in outcomes) for result in RESULTS}
    text = (f"{counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warnings, "
            f"{counts['skip']} skipped")
    return f"{text}, {counts['not run']} not run" if counts["not run"] else text


def junit(outcomes: list[Outcome], server: str, notes: list[str]) -> bytes:
    """The outcomes as JUnit XML, which CI systems read; a warning passes with its text,
    a case not run is an error (it fails the run as the text report does)."""
    suite = ElementTree.Element("testsuite", name="chatsh conform", hostname=server, tests=str(
        len(outcomes)), failures=str(sum(o.result == "fail" for o in outcomes)),
        errors=str(sum(o.result == "not run" for o in outcomes)),
        skipped=str(sum(o.result == "skip" for o in outcomes)),
        time=f"{sum(o.seconds for o in outcomes):.3f}")
    if notes:
        properties = ElementTree.SubElement(suite, "properties")
        for note in notes:
            ElementTree.SubElement(properties, "property", name="note", value=note)
    for outcome in outcomes:
        item = ElementTree.SubElement(suite, "testcase", classname=outcome.id.split(".")[0],
                                      name=outcome.id, time=f"{outcome.seconds:.3f}")
        report = "\n".join([*(f"sent: {s}" for s in outcome.sent), *outcome.notes])
        if outcome.result == "fail":
            ElementTree.SubElement(item, "failure", message=f"expected {outcome.expected}, "
                                   f"got {outcome.got}").text = report
        elif outcome.result == "not run":
            ElementTree.SubElement(item, "error", message=f"not run: {outcome.got}")
        elif outcome.result == "skip":
            ElementTree.SubElement(item, "skipped", message=outcome.got)
        elif outcome.result == "warn":
            ElementTree.SubElement(item, "system-out").text = (
                f"warning ({outcome.level}): expected {outcome.expected}, got {outcome.got}"
                f"\n{report}")
    data: bytes = ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data


def _tls_failure(host: str, port: int, context: ssl.SSLContext, timeout: float) -> str:
    """Why a TLS handshake with the server fails, if it does: said once, not in every
    case (a server that cannot be reached is left to the cases, which report it)."""
    try:
        sock = socket.create_connection((host, port), timeout)
    except OSError:
        return ""
    with sock:
        try:
            TlsSocket(sock, context, host).handshake()
        except TlsError as exc:
            return str(exc)
    return ""


def run(host: str, port: int, options: ConformOptions) -> int:
    cases = select(options.patterns, options.peer is not None, options.profile)
    if not cases:
        print(f"chatsh conform: no case matches {' or '.join(options.patterns or [])}",
              file=sys.stderr)
        return 2
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = "not a valid host name" if isinstance(exc, UnicodeError) else (
            exc.strerror or str(exc))
        print(f"chatsh conform: cannot reach {sanitize(host)}:{port}: {reason}", file=sys.stderr)
        return 2
    if options.tls is not None:
        failure = _tls_failure(host, port, options.tls, options.timeout)
        if failure:
            print(f"chatsh conform: TLS handshake with {sanitize(host)}:{port} failed: {failure}",
                  file=sys.stderr)
            return 2
    width = max(len(item.id) for item in cases)
    ctx = Context(host, port, options.timeout, options.max_clients, options.peer,
                  tls=options.tls)
    notes = server_notes(ctx)
    if notes and not options.as_json:
        print("\n".join(f"note: {note}" for note in notes), flush=True)
    outcomes = []
    for outcome in run_all(cases, ctx, options.strict):
        outcomes.append(outcome)
        if options.as_json:
            continue
        if outcome.result != "not run":
            print("\n".join([_line(outcome, width), *_details(outcome)]), flush=True)
    server = f"{host}:{port}"
    if options.junit:
        try:
            with open(options.junit, "wb") as out:
                out.write(junit(outcomes, server, notes))
        except OSError as exc:
            print(f"chatsh conform: cannot write {options.junit}: {exc.strerror}",
                  file=sys.stderr)
            return 2
    if options.as_json:
        print(json.dumps({"server": server,
                          "peer": f"{options.peer[0]}:{options.peer[1]}" if options.peer
                          else None, "profile": options.profile, "strict": options.strict,
                          "notes": notes,
                          **{key: sum(o.result == result for o in outcomes)
                             for key, result in COUNTED.items()},
                          "cases": [asdict(o) for o in outcomes]}, ensure_ascii=False, indent=1))
    else:
        print(summary(outcomes))
    return 1 if any(o.result in ("fail", "not run") for o in outcomes) else 0
