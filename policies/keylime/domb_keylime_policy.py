# domb — Xen Hyperlaunch boot domain with TPM measured launch
# SPDX-License-Identifier: Apache-2.0
"""Keylime measured-boot policy "domb-launch": checks a domb host's launch events.

Load it in the verifier (docs/keylime.md):

    [verifier]
    measured_boot_imports = ["domb_keylime_policy"]
    measured_boot_policy_name = domb-launch

with this file's directory on the verifier's PYTHONPATH, and give each agent the reference
state `domb keylime policy BUNDLE --measured-boot` prints:

    keylime_tenant -c add -u UUID --mb-policy refstate.json

The reference state is a JSON object:

    {"domb_launch": {"version": 1,
                     "pcrs": {"12": [EVENT, ...], "13": [EVENT, ...]}},
     "firmware": {...}}                       # optional

where each EVENT is one record of the bundle's predicted (golden) event log, in log order:

    {"event_type": "EV_EVENT_TAG" | "EV_IPL" | "EV_SEPARATOR",
     "digests": {"sha256": "<lowercase hex>", ...},   # every bank the bundle measures
     "event": "<hex>",          # EV_EVENT_TAG: the TCG_PCClientTaggedEvent, as tpm2_eventlog prints it
     "header": "domb:cmdline:dom1",  # EV_IPL: the record's "domb:<kind>:<subject>" prefix
     "text": "...",             # EV_IPL: the inline content (informational, for reasons)
     "description": "..."}      # what the event is, for reasons

The policy requires the events the log shows on each launch PCR to be exactly these, in this
order: same event type, the same digest in every bank both the log and the refstate list, for
a module record the same record bytes (domain, role, size, label, digests: event data no
digest covers; on a TPM whose banks are not the bundle's, the same fields, the bundle's
digests in the banks in common and, in every bank, the digest extended), for a
configuration record the same header (its content is covered by the digest, the hash of the
event data), and a separator that is TCG's EV_SEPARATOR. Keylime's verifier replays the
policy's relevant PCRs from the same log and compares them with the quote before the policy
runs, so a log that names other events than the ones extended is refused there.

"firmware", when present, is a reference state of Keylime's own "example" policy (what
`keylime-policy create measured-boot -e LOG` writes); it is evaluated by that policy over the
log's events outside the launch PCRs. Without it, firmware events are replayed against the
quote but not judged.

The module also defines `bootlog_parse`, which Keylime's measured-boot front end takes from
the first imported module that has one: Keylime's own parser, on the log with the binary
content of domb's configuration records (the launch DTB) shown as hex, which Keylime 7.14
cannot read otherwise (see `printable_ipl_log`).

Built from Keylime's elchecking building blocks (keylime.mba.elchecking.tests); nothing of
Keylime is copied here. Tested against Keylime 7.14.3 by scripts/keylime/scenario.sh.
"""

import base64
import binascii
import re
import struct
import typing

from keylime.mba.elchecking import policies, tests
from keylime.mba.elparsing import tpm2_tools_elparser

POLICY_NAME = "domb-launch"
REFSTATE_KEY = "domb_launch"
REFSTATE_VERSION = 1

# domb's default PCR policy (policies/pcr-policy.json): configuration and command lines on 12,
# images on 13. Keylime replays only the PCRs a policy declares relevant, and asks for them at
# tenant time, so they are fixed here; `domb keylime policy` refuses a bundle measured elsewhere.
LAUNCH_PCRS = frozenset({12, 13})
# The PCRs Keylime's "example" policy judges (firmware, boot loader, kernel, MOK): replayed
# from the same log so that "firmware" can be checked, and so that a log which leaves them out
# fails against a real host's quote instead of passing unexamined.
FIRMWARE_PCRS = frozenset(list(range(10)) + [14])

_HEX = re.compile("[0-9a-f]+")
_EVENT_TYPES = ("EV_EVENT_TAG", "EV_IPL", "EV_SEPARATOR")


def _shown(value: object, limit: int = 120) -> str:
    """Untrusted log text for a reason: ASCII-escaped, bounded."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_refstate_event(pcr: str, index: int, event: typing.Any) -> None:
    where = f"refstate domb_launch.pcrs[{pcr!r}][{index}]"
    if not isinstance(event, dict):
        raise Exception(f"{where} is not an object")
    event_type = event.get("event_type")
    if event_type not in _EVENT_TYPES:
        raise Exception(f"{where}.event_type is {event_type!r}, not one of {', '.join(_EVENT_TYPES)}")
    digests = event.get("digests")
    if not isinstance(digests, dict) or not digests:
        raise Exception(f"{where}.digests is not a non-empty object")
    for algorithm, value in digests.items():
        if not isinstance(algorithm, str) or not isinstance(value, str) or not _HEX.fullmatch(value):
            raise Exception(f"{where}.digests[{algorithm!r}] is not lowercase hex")
    if event_type == "EV_EVENT_TAG" and not (isinstance(event.get("event"), str) and _HEX.fullmatch(event["event"])):
        raise Exception(f"{where}.event (the module record) is not lowercase hex")
    if event_type == "EV_IPL" and not (isinstance(event.get("header"), str) and event["header"].startswith("domb:")):
        raise Exception(f"{where}.header is not a domb configuration header")


class _HeaderTest(tests.Test):
    """An EV_IPL event whose data (as tpm2_eventlog renders it) starts with `header` NUL."""

    def __init__(self, header: str):
        super().__init__()
        self.header = header

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        text = subject.get("String") if isinstance(subject, dict) else subject
        if not isinstance(text, str):
            return "is not a string"
        # Keylime drops the trailing NUL of a record with empty content.
        if text.split("\0", 1)[0] == self.header:
            return ""
        return f"is not a record {self.header!a}"


# domb's module record (docs/eventlog.md, DombCore's ModuleRecord): a TCG_PCClientTaggedEvent
# (PFP §10.4.2.1) with tag "dmbM", holding version 1 | domain | role | size u64 | label |
# digests ({TPM_ALG_ID u16, digest}), strings u8-length-prefixed, little-endian.
_MODULE_TAG = 0x4D626D64
_ALGORITHMS = {0x0004: ("sha1", 20), 0x000B: ("sha256", 32), 0x000C: ("sha384", 48), 0x000D: ("sha512", 64), 0x0012: ("sm3_256", 32)}


def _module_record(data: bytes) -> typing.Optional[typing.Tuple[bytes, bytes, int, bytes, typing.Dict[str, str]]]:
    """(domain, role, size, label, {bank: hex digest}) of a module record, or None when `data`
    is not one (every length checked)."""
    try:
        tag, size = struct.unpack_from("<II", data, 0)
        if tag != _MODULE_TAG or len(data) != 8 + size or data[8] != 1:
            return None
        offset = 9

        def string() -> bytes:
            nonlocal offset
            length = data[offset]
            text = data[offset + 1 : offset + 1 + length]
            if len(text) != length:
                raise IndexError("short string")
            offset += 1 + length
            return text

        domain, role = string(), string()
        (module_size,) = struct.unpack_from("<Q", data, offset)
        offset += 8
        label = string()
        count = data[offset]
        offset += 1
        digests: typing.Dict[str, str] = {}
        for _ in range(count):
            (algorithm,) = struct.unpack_from("<H", data, offset)
            name, length = _ALGORITHMS.get(algorithm, (None, 0))
            value = data[offset + 2 : offset + 2 + length]
            if name is None or name in digests or len(value) != length:
                return None
            digests[name] = value.hex()
            offset += 2 + length
        return (domain, role, module_size, label, digests) if offset == len(data) else None
    except (IndexError, struct.error):
        return None


class _ModuleRecordTest(tests.Test):
    """The module record (EV_EVENT_TAG data, covered by no digest) is the bundle's: the same
    bytes, or, on a TPM with more banks than the bundle (the launch lists every active bank's
    digest), the same domain, role, size and label, the bundle's digests in its banks, and in
    every bank exactly the digest the event extended. The rule of `domb attest verify`
    (GoldenEventPolicy.recordMatches)."""

    def __init__(self, expected_hex: str):
        super().__init__()
        self.expected_hex = expected_hex
        self.expected = _module_record(bytes.fromhex(expected_hex))
        if self.expected is None:
            raise Exception(f"the refstate's module record {expected_hex[:32]}... is not a domb module record")

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        event = subject.get("Event") if isinstance(subject, dict) else None
        if not isinstance(event, str):
            return "has no module record"
        if event == self.expected_hex:
            return ""
        try:
            logged = _module_record(bytes.fromhex(event))
        except ValueError:
            logged = None
        if logged is None or self.expected is None or logged[:4] != self.expected[:4]:
            return "is not the bundle's module record (domain, role, size or label)"
        extended = {d.get("AlgorithmId"): d.get("Digest") for d in subject.get("Digests") or [] if isinstance(d, dict)}
        if logged[4] != extended:
            return "has a module record naming other digests than the event extended"
        common = [bank for bank in self.expected[4] if bank in logged[4]]
        if not common or any(logged[4][bank] != self.expected[4][bank] for bank in common):
            return "is not the bundle's module record (its digests)"
        return ""


class _DigestsInCommon(tests.Test):
    """In every bank both the event and the golden event list, the same digest, and at least
    one such bank: a TPM's active banks need not be the bundle's (Keylime's DigestTest
    passes on any one bank of its list, and fails on a bank the log lacks)."""

    def __init__(self, expected: typing.Mapping[str, str]):
        super().__init__()
        self.expected = dict(expected)

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, dict) or not isinstance(subject.get("Digests"), list):
            return "has no Digests"
        logged = {d.get("AlgorithmId"): d.get("Digest") for d in subject["Digests"] if isinstance(d, dict)}
        common = [bank for bank in sorted(self.expected) if bank in logged]
        if not common:
            return f"has no digest in the bundle's banks ({', '.join(sorted(self.expected))})"
        differing = [bank for bank in common if logged[bank] != self.expected[bank]]
        return f"has another {', '.join(differing)} digest" if differing else ""


class _LaunchEvent(tests.Test):
    """One golden event, checked with Keylime's tests; the reason names the event and shows
    what the log has instead."""

    def __init__(self, position: int, expected: typing.Mapping[str, typing.Any]):
        super().__init__()
        self.position = position
        self.expected = expected
        event_type = expected["event_type"]
        checks: typing.List[tests.Test] = [tests.FieldTest("EventType", tests.StringEqual(event_type))]
        checks.append(_DigestsInCommon(expected["digests"]))
        if event_type == "EV_EVENT_TAG":
            checks.append(_ModuleRecordTest(expected["event"]))
        elif event_type == "EV_IPL":
            checks.append(tests.FieldTest("Event", _HeaderTest(expected["header"])))
        else:
            checks.append(tests.EvSeperatorTest())
        self.test = tests.And(*checks)
        self.description = str(expected.get("description") or event_type)

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        name = f"event {self.position + 1} ({self.description})"
        if subject is None:
            return f"{name} is missing from the log"
        reason = self.test.why_not(globs, subject)
        if not reason:
            return ""
        logged = ""
        if isinstance(subject, dict):
            digests = {
                d.get("AlgorithmId"): d.get("Digest") for d in subject.get("Digests") or [] if isinstance(d, dict)
            }
            logged = f"; the log has {_shown(subject.get('EventType'))} #{_shown(subject.get('EventNum'))}"
            logged += "".join(f", {a} {_shown(digests.get(a))}" for a in sorted(self.expected["digests"]))
            event = subject.get("Event")
            if isinstance(event, dict) and isinstance(event.get("String"), str):
                header, _, content = event["String"].partition("\0")
                logged += f", record {_shown(header)} with content {_shown(content)}"
                if "text" in self.expected:
                    logged += f" where the bundle has {_shown(self.expected['text'])}"
        return f"{name} {reason}{logged}"


# Differing events named in one reason; the rest are counted.
_MAX_REASONS = 4


def _joined(reasons: typing.List[str]) -> str:
    shown = reasons[:_MAX_REASONS]
    if len(reasons) > _MAX_REASONS:
        shown.append(f"and {len(reasons) - _MAX_REASONS} more")
    return " | ".join(shown)


class _LaunchPCR(tests.Test):
    """The events of one launch PCR, in log order, are exactly the golden ones. Unlike
    Keylime's TupleTest it names every event that differs (a changed command line also
    changes the launch DTB before it), up to _MAX_REASONS."""

    def __init__(self, pcr: int, events: typing.Sequence[typing.Mapping[str, typing.Any]]):
        super().__init__()
        self.pcr = pcr
        self.events = [_LaunchEvent(i, e) for i, e in enumerate(events)]

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, dict) or not isinstance(subject.get("events"), list):
            return "has no list of events"
        on_pcr = [e for e in subject["events"] if isinstance(e, dict) and e.get("PCRIndex") == self.pcr]
        reasons = [
            reason
            for index, test in enumerate(self.events)
            if (reason := test.why_not(globs, on_pcr[index] if index < len(on_pcr) else None))
        ]
        if len(on_pcr) > len(self.events):
            extra = on_pcr[len(self.events)]
            reasons.append(
                f"the log has {len(on_pcr)} events, the bundle {len(self.events)}; the first extra is "
                f"{_shown(extra.get('EventType'))} #{_shown(extra.get('EventNum'))}"
            )
        return f"PCR {self.pcr}: {_joined(reasons)}" if reasons else ""


class _All(tests.Test):
    """Every test passes; the reason lists each failing one (Keylime's And stops at the first)."""

    def __init__(self, *checks: tests.Test):
        super().__init__()
        self.checks = checks

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        return " || ".join(reason for check in self.checks if (reason := check.why_not(globs, subject)))


class _OutsidePCRs(tests.Test):
    """Applies `test` to the log with the events of `pcrs` left out."""

    def __init__(self, pcrs: typing.FrozenSet[int], test: tests.Test):
        super().__init__()
        self.pcrs = pcrs
        self.test = test

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, dict) or not isinstance(subject.get("events"), list):
            return "has no list of events"
        view = dict(subject)
        view["events"] = [e for e in subject["events"] if not (isinstance(e, dict) and e.get("PCRIndex") in self.pcrs)]
        reason = self.test.why_not(globs, view)
        return f"firmware (Keylime's example policy): {reason}" if reason else ""


class DombLaunch(policies.Policy):
    """domb's launch on PCRs 12 and 13, and optionally the firmware by Keylime's example policy."""

    def get_relevant_pcrs(self) -> typing.FrozenSet[int]:
        return LAUNCH_PCRS | FIRMWARE_PCRS

    def refstate_to_test(self, refstate: policies.RefState) -> tests.Test:
        if not isinstance(refstate, dict):
            raise Exception(f"the refstate is a {type(refstate).__name__}, not an object")
        launch = refstate.get(REFSTATE_KEY)
        if not isinstance(launch, dict):
            raise Exception(f"the refstate has no {REFSTATE_KEY!r} object (make it with `domb keylime policy --measured-boot`)")
        if launch.get("version") != REFSTATE_VERSION:
            raise Exception(f"refstate {REFSTATE_KEY}.version is {launch.get('version')!r}; this policy reads {REFSTATE_VERSION}")
        pcrs = launch.get("pcrs")
        if not isinstance(pcrs, dict) or not pcrs:
            raise Exception(f"refstate {REFSTATE_KEY}.pcrs is not a non-empty object")
        checks: typing.List[tests.Test] = []
        for pcr_text in sorted(pcrs, key=lambda p: (len(p), p)):
            if not pcr_text.isdigit() or int(pcr_text) not in LAUNCH_PCRS:
                raise Exception(f"refstate names PCR {pcr_text!r}; {POLICY_NAME} checks PCRs {sorted(LAUNCH_PCRS)}")
            events = pcrs[pcr_text]
            if not isinstance(events, list) or not events:
                raise Exception(f"refstate {REFSTATE_KEY}.pcrs[{pcr_text!r}] is not a non-empty list")
            for index, event in enumerate(events):
                _check_refstate_event(pcr_text, index, event)
            checks.append(_LaunchPCR(int(pcr_text), events))
        firmware = refstate.get("firmware")
        if firmware is not None:
            example = policies.get_policy("example")
            if example is None:
                raise Exception("the refstate has 'firmware' but Keylime's example policy is not loaded")
            checks.append(_OutsidePCRs(LAUNCH_PCRS, example.refstate_to_test(firmware)))
        return _All(*checks)


policies.register(POLICY_NAME, DombLaunch())

# TCG PC Client Platform Firmware Profile 1.05, §10.2.1 (TCG_PCClientPCREvent, the first record
# in SHA-1 format), §10.2.2 (TCG_PCR_EVENT2) and §10.4.5.1 (TCG_EfiSpecIDEvent).
_EV_IPL = 0x0000000D
_SPEC_ID_SIGNATURE = b"Spec ID Event03\0"
_DOMB_RECORD = b"domb:"
# Bytes tpm2_eventlog prints as themselves or escapes (NUL): anything else reaches Keylime's
# YAML reader raw, and it refuses the whole log (a DTB is binary).
_RENDERABLE = frozenset(range(0x20, 0x7F)) | {0}


def _printable_ipl(data: bytes) -> bytes:
    """An EV_IPL record `header NUL content` whose content is binary, as `header NUL hex:<content>`."""
    header, nul, content = data.partition(b"\0")
    if nul and all(b in _RENDERABLE for b in header):
        return header + b"\0hex:" + content.hex().encode()
    return b"hex:" + data.hex().encode()


def printable_ipl_log(log: bytes) -> bytes:
    """`log` with every domb configuration record (EV_IPL data starting `domb:`) that holds bytes
    tpm2_eventlog would print raw (non-ASCII, control characters) rewritten by `_printable_ipl`.
    Every other event (the firmware's, grub's) is kept byte for byte, and so are the PCR
    indices, event types and digests of all, so the replay against the quote is unchanged; the
    policy judges a configuration record by its digests (the hash of the original data) and
    header. Returns `log` itself when there is nothing to rewrite or it is not a crypto-agile
    log that walks to its end (Keylime's parser then judges the original bytes)."""
    try:
        if len(log) < 32:
            return log
        _, _, size = struct.unpack_from("<II20xI", log, 0)
        spec = log[32 : 32 + size]
        if len(spec) != size or size < 28 or not spec.startswith(_SPEC_ID_SIGNATURE):
            return log
        (count,) = struct.unpack_from("<I", spec, 24)
        if 28 + 4 * count > size:
            return log
        sizes = dict(struct.unpack_from("<HH", spec, 28 + 4 * i) for i in range(count))
        out = [log[: 32 + size]]
        offset = 32 + size
        changed = False
        while offset < len(log):
            start = offset
            _, event_type, digest_count = struct.unpack_from("<III", log, offset)
            offset += 12
            for _ in range(digest_count):
                (algorithm,) = struct.unpack_from("<H", log, offset)
                if algorithm not in sizes:
                    return log
                offset += 2 + sizes[algorithm]
            (data_size,) = struct.unpack_from("<I", log, offset)
            data = log[offset + 4 : offset + 4 + data_size]
            if len(data) != data_size:
                return log
            if event_type == _EV_IPL and data.startswith(_DOMB_RECORD) and not all(b in _RENDERABLE for b in data):
                data = _printable_ipl(data)
                changed = True
            out.append(log[start:offset] + struct.pack("<I", len(data)) + data)
            offset += 4 + data_size
        return b"".join(out) if changed else log
    except struct.error:
        return log


def bootlog_parse(mb_measurement_list: typing.Optional[str], hash_alg: str) -> typing.Any:
    """Keylime's own parser (`tpm2_tools_elparser.bootlog_parse`, tpm2_eventlog + YAML) on the
    agent's log with binary EV_IPL data made printable (`printable_ipl_log`): domb measures the
    launch DTB as an EV_IPL configuration record, which Keylime 7.14 with tpm2-tools 5.4 cannot
    read (UnicodeDecodeError, then YAML's "special characters are not allowed"). Keylime's
    measured-boot front end calls the first imported module that defines this function."""
    if mb_measurement_list:
        try:
            raw = base64.b64decode(mb_measurement_list, validate=True)
        except (binascii.Error, ValueError):
            raw = None  # Keylime's parser reports the bad encoding
        if raw is not None:
            rendered = printable_ipl_log(raw)
            if rendered is not raw:
                mb_measurement_list = base64.b64encode(rendered).decode("ascii")
    return tpm2_tools_elparser.bootlog_parse(mb_measurement_list, hash_alg)


def _main(argv: typing.List[str]) -> int:
    """`python3 -m domb_keylime_policy LOG REFSTATE`: Keylime's parser (tpm2_eventlog) and this
    policy on a binary log, as the verifier runs them; prints the reason, exit 1 on refusal."""
    import json  # pylint: disable=import-outside-toplevel

    from keylime.mba.elchecking import example  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

    if len(argv) != 2:
        print("usage: python3 -m domb_keylime_policy LOG REFSTATE")
        return 2
    with open(argv[0], "rb") as f:
        _, _, log, failure = bootlog_parse(base64.b64encode(f.read()).decode("ascii"), "sha256")
    if failure:
        print(f"Keylime cannot parse the log: {failure.get_event_ids()}")
        return 1
    with open(argv[1], encoding="utf-8") as f:
        refstate = json.load(f)
    reason = policies.evaluate(POLICY_NAME, refstate, log)
    print(f"{POLICY_NAME}: {'refused: ' + reason if reason else 'accepted'}")
    return 1 if reason else 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
