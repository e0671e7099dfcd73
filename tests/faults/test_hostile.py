"""A stream of 100,000 malformed and hostile messages at a real goferd.

Hypothesis draws a pool of message templates (bad JSON, wrong types, deep
nesting, path-like serial numbers, unknown classes and methods, wrong
versions, hostile reply addresses, signed wrappers without a signer...);
the stream then cycles through the pool, stamping each copy with its own
tag (in ``data``, or in the serial number when ``data`` is the hostile
part), and a few huge bodies (up to 8 MiB) are mixed in. Bodies go out raw
on a plain py-amqp channel, paced so that goferd's queue stays short.

Afterwards: goferd is still up and answers; its memory grew within a bound;
every message whose reply address is usable got exactly one final answer,
``rejected`` with a code and a reason (or, for a well-formed request of an
unknown class or method, the NamespaceNotFound / MemberNotFound failure of
WIRE.md); nothing ran; and no file appeared or changed under goferd's root
outside its journal and the plugin's marks, nor in a sentinel directory that
path-like serial numbers and reply addresses point at.

``GOFER_FAULTS_HOSTILE_MESSAGES`` (default 100,000) sets the length of the
stream; the figures (count, rate, memory) are printed (``-s``) and recorded
as the test's ``hostile`` property. goferd, not the sender, sets the pace.
The stream's connections do not reconnect: a broker restarted or told to
drop every connection meanwhile (by another suite on the same broker) fails
the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import amqp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gofer.errors import GoferError
from gofer.messaging.url import Url
from gofer.proxy import Agent
from tests.faults.conftest import FaultGoferd, delete_queues

MESSAGES = int(os.environ.get("GOFER_FAULTS_HOSTILE_MESSAGES", "100000"))
#: Bounds the test's time: goferd takes well over 1,000 such messages a second.
SECONDS = MESSAGES / 250 + 60
POOL = 600
#: Messages allowed to wait in goferd's queue before the sender pauses.
BACKLOG = 2000
#: Seconds without progress after which goferd counts as stuck.
STALL = 15.0
#: Growth of goferd's resident memory allowed over the whole stream.
RSS_GROWTH_KIB = 96 * 1024
MIB = 2**20

TAG, STAG, SN = "@@TAG@@", "@@STAG@@", "@@SN@@"
DEEP = "@@DEEP:{}@@"
UNKNOWN_DISPATCH = {"NamespaceNotFound", "MemberNotFound"}


@dataclasses.dataclass
class Template:
    """A message with placeholders; ``kinds`` says what is hostile about it."""

    body: bytes
    kinds: tuple[str, ...]
    answerable: bool = False

    def render(self, tag: int, sn: str = "") -> bytes:
        body = self.body
        if b"@@" not in body:
            return body
        number = str(tag).encode()
        fresh = (sn or str(uuid.uuid4())).encode()
        for plain, value in (
            (TAG, (number, number)),
            (STAG, (b'"tag-' + number + b'"', b'\\"tag-' + number + b'\\"')),
            (SN, (b'"' + fresh + b'"', b'\\"' + fresh + b'\\"')),
        ):
            quoted = plain.encode()
            body = body.replace(b'"' + quoted + b'"', value[0])
            body = body.replace(b'\\"' + quoted + b'\\"', value[1])
        return body


# -- what goes into the templates --------------------------------------------------

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "../..", "%s%n", "${jndi:x}"])
)
JSON_ANY = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
BAD_VERSIONS = [
    "1.0",
    "2",
    "2.0 ",
    " 2.0",
    "2.00",
    "3.0",
    "",
    "\uff12.\uff10",
    2.0,
    2,
    None,
    [],
    {},
    True,
]
NOT_SN = [None, 7, 1.5, True, [], {}, "", " ", "\x00", "-" * 65, "0" * 65]
BAD_NAMES = [5, "", None, [], {}, True, "x" * 300]
UNKNOWN_CLASSES = ["NoSuchClass", "Admin", "Fault", "faults", "../../etc", "os", "__builtins__"]
UNKNOWN_METHODS = ["__init__", "__class__", "__del__", "_record", "mro", "nosuch", "../x", "eval"]


def path_like_sns(sentinel: Path) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/passwd",
            "../journal/lock",
            "..",
            ".",
            "journal.log",
            "../../../../../../../../tmp/x",
            f"{sentinel}/sn",
            f"../../../../../../../..{sentinel}/sn",
            "C:\\Windows\\x",
            "%2e%2e%2f%2e%2e%2fx",
            "aaaa/../../bbbb",
            "~root/.ssh/authorized_keys",
        ]
    ) | st.text(max_size=30).map(lambda text: "../" + text)


def hostile_reply_addresses(sentinel: Path, own_queue: str, reply: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [
            5,
            "",
            [],
            {"queue": reply},
            "x" * 300,
            "nope/../x",
            f"amq.direct/{reply}",
            "no-such-exchange/" + reply,
            f"gofer-faults-nobody-{uuid.uuid4()}",
            own_queue,  # goferd answering itself
            f"{sentinel}/replyto",
            "a/b/c",
            "\u00e9" * 200,  # 200 characters, 400 bytes: more than AMQP's 255-byte names
            f"{'e' * 300}/{reply}",
        ]
    )


def hostile_data() -> st.SearchStrategy[Any]:
    return st.one_of(
        # Deep, yet readable: near Python's recursion limit (1000 frames, the caller's
        # included) whether a parser copes depends on its thread's stack, so this
        # oracle and goferd could disagree; 100,000 levels (junk) are unreadable to both.
        st.integers(min_value=2, max_value=900).map(DEEP.format),
        st.sampled_from([math.nan, math.inf, -math.inf, "\ud800", "x" * 65536]),
        st.dictionaries(
            st.sampled_from(["", "__proto__", "\x00", "sn", "../"]), JSON_ANY, max_size=3
        ),
        JSON_ANY,
    ).map(lambda value: [value])  # never a bare integer: those are tags


def rejecting_mutations(sentinel: Path) -> st.SearchStrategy[tuple[str, Any]]:
    """Changes each of which alone makes goferd refuse the request."""
    return st.one_of(
        st.tuples(st.just("version"), st.sampled_from(BAD_VERSIONS)),
        st.tuples(st.just("sn"), path_like_sns(sentinel) | st.sampled_from(NOT_SN)),
        st.tuples(st.just("request"), st.sampled_from([None, "x", [], 5, True, {}])),
        st.tuples(st.just("request.classname"), st.sampled_from(BAD_NAMES)),
        st.tuples(st.just("request.method"), st.sampled_from(BAD_NAMES)),
        st.tuples(st.just("request.args"), st.sampled_from(["args", {}, 5, True, {"a": 1}])),
        st.tuples(st.just("request.kws"), st.sampled_from([[], "kws", 5, [["a", 1]]])),
        st.tuples(st.just("request.cntr"), st.sampled_from(["x", [1], [[], []], 5, [[], {}, 3]])),
    )


def harmless_mutations() -> st.SearchStrategy[tuple[str, Any]]:
    """Changes goferd may ignore (the request stays well-formed)."""
    return st.one_of(
        st.tuples(st.just("ttl"), st.sampled_from(["x", -1, 1e308, True, None, [], math.nan])),
        st.tuples(st.just("secret"), st.sampled_from([5, [], {"a": 1}, "\x00" * 10])),
        st.tuples(st.just("pam"), st.sampled_from(["x", {"user": 5}, {"user": "root"}, []])),
        st.tuples(st.just("routing"), st.sampled_from(["x", [1, 2, 3], None, [None, 5]])),
        st.tuples(st.just("timestamp"), st.sampled_from([5, "garbage", "9999-99-99T99:99:99Z"])),
        st.tuples(st.just("signed_at"), st.sampled_from(["x", 5, None])),
        st.tuples(st.text(min_size=1, max_size=8).map(lambda key: "extra:x-" + key), JSON_ANY),
    )


def envelope(
    reply: str,
    own_queue: str,
    rejecting: list[tuple[str, Any]],
    harmless: list[tuple[str, Any]],
    replyto: list[Any],
    data: list[Any],
    unknown: tuple[str, str],
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A request for an unknown class or method, then changed by the mutations drawn."""
    classname, method = unknown
    doc: dict[str, Any] = {
        "sn": SN,
        "version": "2.0",
        "routing": [None, own_queue],
        "replyto": reply,
        "data": TAG,
        "timestamp": "2026-11-22T19:14:12Z",
        "request": {"classname": classname, "method": method, "args": [], "kws": {}, "cntr": None},
    }
    kinds = []
    for field, value in [*rejecting, *harmless]:
        kinds.append(field.split(":")[0])
        if field.startswith("extra:"):
            doc[field[6:]] = value
        elif field.startswith("request."):
            if isinstance(doc["request"], dict):
                doc["request"][field[8:]] = value
        else:
            doc[field] = value
    for value in replyto:
        doc["replyto"] = value
        kinds.append("replyto")
    for value in data:  # the tag moves into the serial number, which is then invalid
        doc["data"], doc["sn"] = value, STAG
        kinds.append("data")
    if not rejecting and not data:
        kinds.append(f"unknown:{classname}.{method}")
    return doc, tuple(kinds)


def dump(doc: Any) -> bytes:
    text = json.dumps(doc)  # NaN and Infinity too: Python's json reads them back
    while "@@DEEP:" in text:
        start = text.index('"@@DEEP:')
        end = text.index('@@"', start + 1) + 3
        depth = int(text[start + 8 : end - 3])
        text = text[:start] + "[" * depth + "]" * depth + text[end:]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def templates(draw: st.DrawFn, reply: str, own_queue: str, sentinel: Path) -> Template:
    shape = draw(st.integers(min_value=0, max_value=19))
    if shape < 3:
        return draw(junk(reply))
    doc, kinds = envelope(
        reply,
        own_queue,
        # one request in twenty is well-formed (an unknown class or method): it is journaled
        rejecting=[]
        if shape == 3
        else draw(st.lists(rejecting_mutations(sentinel), min_size=1, max_size=2)),
        harmless=draw(st.lists(harmless_mutations(), max_size=2)),
        replyto=draw(st.lists(hostile_reply_addresses(sentinel, own_queue, reply), max_size=1)),
        data=draw(st.lists(hostile_data(), max_size=1)) if shape > 5 else [],
        unknown=(draw(st.sampled_from(UNKNOWN_CLASSES)), draw(st.sampled_from(UNKNOWN_METHODS))),
    )
    if shape == 19:  # a signed wrapper, and no authenticator at goferd: unwrapped unchecked
        signature = draw(st.sampled_from(["", "!!", "AAAA", None, 5]))
        return Template(
            dump({"message": dump(doc).decode("utf-8", "surrogatepass"), "signature": signature}),
            ("wrapped", *kinds),
        )
    return Template(dump(doc), kinds)


def junk(reply: str) -> st.SearchStrategy[Template]:
    """Bodies that are not a JSON object goferd could read."""
    return st.one_of(
        st.binary(max_size=300).map(lambda body: Template(body, ("binary",))),
        # Cut short: without a closing brace it can never become valid JSON.
        st.binary(min_size=1, max_size=40).map(
            lambda tail: Template(
                b'{"replyto": "' + reply.encode() + b'", "sn": ' + tail.replace(b"}", b""),
                ("truncated",),
            )
        ),
        JSON_ANY.filter(lambda value: not isinstance(value, dict)).map(
            lambda value: Template(dump(value), ("not-an-object",))
        ),
        st.sampled_from(
            [
                b"\xff\xfe{}",
                json.dumps({"replyto": reply}).encode("utf-16"),
                b'{"replyto": "' + reply.encode() + b'", "data": ' + b"1" * 5000 + b"}",
                b'{"message": 5}',
                b'{"message": "not json", "signature": "x"}',
                b'{"message": "[1, 2]"}',
                b"[" * 100_000 + b"]" * 100_000,
                b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
                b"",
                b"null",
                b'"\\ud800"',
            ]
        ).map(lambda body: Template(body, ("junk",))),
    )


# -- the oracle: which messages carry a reply address goferd can use -----------------


def reply_address(body: bytes) -> Any:
    """The reply address of a body as goferd reads it (unwrapping a signed wrapper), or None."""
    try:
        doc = json.loads(body.decode("utf-8"))
        if isinstance(doc, dict) and "message" in doc:
            doc = json.loads(doc["message"]) if isinstance(doc["message"], str) else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc.get("replyto") if isinstance(doc, dict) else None


def build_pool(reply: str, own_queue: str, sentinel: Path) -> list[Template]:
    pool: list[Template] = []

    @settings(
        max_examples=POOL,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(templates(reply, own_queue, sentinel))
    def collect(template: Template) -> None:
        pool.append(template)

    collect()
    return answerable(pool, reply)


def answerable(templates: list[Template], reply: str) -> list[Template]:
    """Mark the templates whose messages have ``reply`` as a usable reply address."""
    for template in templates:
        template.answerable = reply_address(template.render(0)) == reply
    return templates


def huge(reply: str, own_queue: str) -> list[Template]:
    """A few big bodies, up to 8 MiB."""

    def request(**changes: Any) -> dict[str, Any]:
        doc = {
            "sn": SN,
            "version": "2.0",
            "routing": [None, own_queue],
            "replyto": reply,
            "data": TAG,
            "request": {"classname": "NoSuchClass", "method": "x", "args": [], "kws": {}},
        }
        doc.update(changes)
        return doc

    padding = "A" * (8 * MIB - 512)
    made = [
        Template(os.urandom(8 * MIB), ("huge", "binary")),
        Template(dump(request(version="1.0", pad=padding)), ("huge", "version")),
        Template(dump(request(sn="../" * (2 * MIB))), ("huge", "sn")),
        Template(dump(request(extra=padding[: 4 * MIB])), ("huge", "unknown:NoSuchClass.x")),
        Template(dump({**request(data=["D" * MIB]), "sn": STAG}), ("huge", "data")),
        Template(b"[" * (4 * MIB) + b"]" * (4 * MIB), ("huge", "deep")),
    ]
    return answerable(made, reply)


# -- the run ---------------------------------------------------------------------


class Replies(threading.Thread):
    """Reads the reply queue on a connection of its own; counts final answers per tag."""

    def __init__(self, url: Url, queue: str) -> None:
        super().__init__(name="hostile-replies", daemon=True)
        self.connection = open_channel(url)
        self.channel = self.connection.channel()
        self.queue = queue
        self.finals: Counter[int] = Counter()
        self.accepted: Counter[int] = Counter()
        self.total = 0
        self.anomalies: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            self.channel.basic_qos(0, 1000, False)
            self.channel.basic_consume(self.queue, callback=self.on_message, no_ack=True)
            while not self.stopping.is_set():
                try:
                    self.connection.drain_events(timeout=0.2)
                except TimeoutError:
                    continue
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.anomaly(f"reading replies failed: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                self.connection.close()

    def on_message(self, message: amqp.Message) -> None:
        self.total += 1
        reply = json.loads(message.body)
        tag = tag_of(reply)
        if tag is None:
            self.anomaly(f"reply without a tag: {str(reply)[:300]}")
            return
        if reply.get("status") == "accepted":
            self.accepted[tag] += 1
        if reply.get("status") == "rejected":
            self.finals[tag] += 1
            if not (isinstance(reply.get("code"), str) and reply["code"]):
                self.anomaly(f"rejected without a code: {str(reply)[:300]}")
            if not (isinstance(reply.get("description"), str) and reply["description"]):
                self.anomaly(f"rejected without a reason: {str(reply)[:300]}")
        elif "result" in reply and not reply.get("status"):
            self.finals[tag] += 1
            if reply["result"].get("xclass") not in UNKNOWN_DISPATCH:
                self.anomaly(f"a hostile request got a result: {str(reply)[:300]}")

    def anomaly(self, text: str) -> None:
        if len(self.anomalies) < 20:
            self.anomalies.append(text)


def tag_of(reply: dict[str, Any]) -> int | None:
    data, sn = reply.get("data"), reply.get("sn")
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(sn, str) and sn.startswith("tag-") and sn[4:].isdigit():
        return int(sn[4:])
    return None


def open_channel(url: Url) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{url.host}:{url.port}",
        userid=url.userid or "guest",
        password=url.password or "guest",
        virtual_host=url.virtual_host or "/",
    )
    connection.connect()
    return connection


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under goferd's root outside the journal and the marks: (is_dir, size, mtime)."""
    found = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(("var/lib/gofer/journal", "marks")) or relative == "goferd.log":
            continue
        info = path.lstat()
        found[relative] = (path.is_dir(), info.st_size if path.is_file() else 0, info.st_mtime_ns)
    return found


def vm(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


@pytest.fixture
def sentinel() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="gofer-faults-sentinel-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class Stream:
    """Publishes rendered templates to goferd's queue, never more than ``BACKLOG`` ahead of it."""

    def __init__(self, channel: Any, queue: str) -> None:
        self.channel = channel
        self.queue = queue
        self.sent = 0
        self.templates: list[Template] = []  # by tag
        self.answerable: dict[int, Template] = {}
        self.sns: dict[int, str] = {}  # of the answerable ones: to find them in goferd's log
        self.kinds: Counter[str] = Counter()

    def publish(self, template: Template) -> None:
        sn = str(uuid.uuid4())
        body = template.render(self.sent, sn)
        self.channel.basic_publish(amqp.Message(body), exchange="", routing_key=self.queue)
        self.templates.append(template)
        if template.answerable:
            self.answerable[self.sent] = template
            self.sns[self.sent] = sn if SN.encode() in template.body else f"tag-{self.sent}"
        self.kinds.update(template.kinds)
        self.sent += 1

    def wait_below(self, limit: int) -> bool:
        """Wait until goferd's queue holds at most ``limit``; False if goferd stopped taking."""
        last, since = -1, time.monotonic()
        while (depth := self.channel.queue_declare(self.queue, passive=True).message_count) > limit:
            if depth != last:
                last, since = depth, time.monotonic()
            elif time.monotonic() - since > STALL:
                return False
            time.sleep(0.02)
        return True


def wait_for_answers(replies: Replies, wanted: set[int]) -> None:
    """Wait until every wanted tag is answered, or no answer came for ``STALL`` seconds."""
    last, since = -1, time.monotonic()
    while wanted - set(replies.finals) and time.monotonic() - since < STALL:
        if replies.total != last:
            last, since = replies.total, time.monotonic()
        time.sleep(0.1)


def troubles(log: str) -> list[str]:
    """goferd's log lines about broken connections and retries, shortened."""
    found = [
        line[:300]
        for line in log.splitlines()
        if "driver error" in line or ("dropping the connection" in line and "send to" in line)
    ]
    return found[:3] + (["..."] if len(found) > 3 else [])


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 90)
def test_hostile_stream(fault_goferd, url: str, sentinel: Path, record_property) -> None:
    goferd: FaultGoferd = fault_goferd(threads=4)
    reply = f"gofer-faults-hostile-replies-{uuid.uuid4()}"
    parsed = Url.parse(url)
    sender = open_channel(parsed)
    channel = sender.channel()
    channel.queue_declare(reply, durable=False, auto_delete=False, arguments={"x-expires": 600_000})
    replies = Replies(parsed, reply)
    replies.start()
    try:
        assert Agent(url, goferd.queue, wait=30).Fault().work("warm-up") == "warm-up"
        pool = build_pool(reply, goferd.queue, sentinel)
        big = huge(reply, goferd.queue)
        before_files = snapshot(goferd.root)
        before = vm(goferd.pid)

        stream = Stream(channel, goferd.queue)
        started = time.monotonic()
        taking = True
        while taking and stream.sent < MESSAGES:
            for _ in range(min(200, MESSAGES - stream.sent)):
                number = stream.sent
                if number % 1000 == 500 and number // 1000 < len(big):
                    stream.publish(big[number // 1000])
                else:
                    stream.publish(pool[number % len(pool)])
            taking = stream.wait_below(BACKLOG)
        sending = time.monotonic() - started
        taking = taking and stream.wait_below(0)
        consumed = time.monotonic() - started
        wait_for_answers(replies, set(stream.answerable))
        time.sleep(1.0)  # a second answer to anything would show now
        after = vm(goferd.pid)
        after_files = snapshot(goferd.root)

        figures = {
            "messages": stream.sent,
            "seconds sending": round(sending, 1),
            "seconds until all taken": round(consumed, 1),
            "messages per second": round(stream.sent / consumed),
            "with a usable reply address": len(stream.answerable),
            "replies read": replies.total,
            "RSS before KiB": before["VmRSS"],
            "RSS after KiB": after["VmRSS"],
            "RSS peak KiB": after["VmHWM"],
        }
        record_property("hostile", figures)
        print(f"\nhostile stream: {figures}\nkinds: {dict(stream.kinds.most_common())}")

        # Every check is reported: a stream is too long to learn one problem at a time.
        assert goferd.process is not None
        assert goferd.process.poll() is None, goferd.log()[-3000:]
        problems = []
        if not taking:
            problems.append(f"goferd stopped taking messages: {troubles(goferd.log())}")
        try:
            assert Agent(url, goferd.queue, wait=30).Fault().work("after") == "after"
        except GoferError as exc:
            problems.append(f"goferd does not answer a call after the stream: {exc}")
        if missing := sorted(set(stream.answerable) - set(replies.finals)):
            log = goferd.log().splitlines()
            examples = [
                f"{stream.answerable[m].kinds}: "
                + " | ".join(
                    line[line.find("gofer.") :][:250] for line in log if stream.sns[m] in line
                )
                for m in missing[:3]
            ]
            problems.append(
                f"{len(missing)} of {len(stream.answerable)} never answered, e.g. {examples}"
            )
        if twice := {t: n for t, n in replies.finals.items() if n != 1}:
            problems.append(f"answered more than once: {dict(list(twice.items())[:5])}")
        if stray := sorted(set(replies.finals) - set(stream.answerable)):
            examples = [
                f"{stream.templates[t].kinds} {stream.templates[t].body[:200]!r}" for t in stray[:3]
            ]
            problems.append(f"answers to messages without a usable reply address: {examples}")
        problems.extend(replies.anomalies)
        if ran := [tag for *_, tag in goferd.executions() if tag not in ("warm-up", "after")]:
            problems.append(f"hostile requests ran: {ran[:5]}")
        if after["VmRSS"] - before["VmRSS"] > RSS_GROWTH_KIB:
            problems.append(f"resident memory grew by more than {RSS_GROWTH_KIB} KiB")
        if outside := list(sentinel.iterdir()):
            problems.append(f"files made outside goferd's root: {outside}")
        created = sorted(set(after_files) - set(before_files))
        changed = sorted(p for p in before_files if after_files.get(p) != before_files[p])
        if created or changed:
            problems.append(f"outside the journal and marks: created {created}, changed {changed}")
        assert problems == [], "\n".join(problems)
    finally:
        replies.stopping.set()
        replies.join(5)
        with contextlib.suppress(Exception):
            sender.close()
        delete_queues(url, reply)
