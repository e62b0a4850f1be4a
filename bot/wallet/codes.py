"""Card formats: the one place that knows what a serial, a claim code and an order number are.

Parsers accept what shoppers type (spaces, dashes, lower case) and return the canonical form,
or raise :class:`CodeFormatError` with a hint that tells the shopper what exactly is wrong.
The NLU patterns, the form validators and the CLI all use these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SERIAL_LENGTH = 19
SERIAL_PREFIX = "17"
CLAIM_CODE_LENGTHS = (14, 15)
MIN_GROUP_LENGTH = 3
PRINTED_GROUP_ENDS = (4, 10)
"""Where the printed groups of a claim code end (AQ4T-B7XWZC-9M2P: format_claim_code)."""
# Generated codes avoid characters that are easy to misread (0/O, 1/I/L).
CLAIM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
AMBIGUOUS_CHARACTERS = frozenset("0O1IL")
DIGITAL_ORDER_PREFIX = "D01"

_SEPARATORS = re.compile(r"[\s\-]+")


class CodeFormatError(ValueError):
    """A value that is not in the expected format; ``hint`` is safe to show the shopper."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


def _compact(text: object) -> str:
    """``text`` without separators. A value that is not text at all (a slot filled by a typed
    ``/intent{"serial_number": {...}}``) reads as empty, so it gets the "please type" hint."""
    if not isinstance(text, str):
        return ""
    return _SEPARATORS.sub("", text.strip())


# ---------------------------------------------------------------------------- serial numbers


def parse_serial(text: object) -> str:
    """The 19-digit serial in ``text`` (spaces and dashes allowed between digits)."""
    compact = _compact(text)
    if not compact:
        raise CodeFormatError("Please type the serial number printed near the bottom of the back.")
    if not compact.isdigit() or not compact.isascii():
        raise CodeFormatError(
            "A serial number has only digits (no letters). It is the 19-digit number near the "
            "bottom of the back of the card, starting with 17."
        )
    if len(compact) != SERIAL_LENGTH:
        raise CodeFormatError(
            f"A serial number has 19 digits; I counted {len(compact)}. Please check it against "
            "the number near the bottom of the back of the card."
        )
    if not compact.startswith(SERIAL_PREFIX):
        raise CodeFormatError(
            "Gift card serial numbers always start with 17. Please check the number near the "
            "bottom of the back of the card."
        )
    return compact


def mask_serial(serial: str) -> str:
    """The serial as it may be shown in chat, logs and the agent console: last 4 digits."""
    return f"••••{serial[-4:]}"


def mask_email(email: str) -> str:
    """``ben@example.com`` -> ``b••@example.com``: enough to recognise, not to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}••@{domain}" if domain else "••"


def generate_serial() -> str:
    return SERIAL_PREFIX + "".join(secrets.choice("0123456789") for _ in range(SERIAL_LENGTH - 2))


# ------------------------------------------------------------------------------- claim codes


def parse_claim_code(text: object) -> str:
    """The canonical (upper case, no separators) claim code in ``text``."""
    compact = _compact(text)
    # Upper-case ASCII only: "ß".upper() is "SS" and "ı".upper() is "I", which would pass.  # noqa: RUF003
    compact = compact.upper() if compact.isascii() else compact
    if not compact:
        raise CodeFormatError(
            "Please type the claim code: it is on the back of the card, under the words "
            "'Claim Code' (you may need to scratch off the silver foil)."
        )
    if not (compact.isascii() and compact.isalnum()):
        raise CodeFormatError(
            "A claim code has only letters and digits (dashes and spaces are fine). Please "
            "type it exactly as printed under 'Claim Code'."
        )
    if compact.isdigit() and len(compact) == SERIAL_LENGTH and compact.startswith(SERIAL_PREFIX):
        raise CodeFormatError(
            "That looks like the serial number. The claim code is the shorter mix of letters "
            "and digits nearer the top of the back, under 'Claim Code'."
        )
    if len(compact) not in CLAIM_CODE_LENGTHS:
        raise CodeFormatError(
            f"A claim code has 14 or 15 letters and digits; I counted {len(compact)}. Please "
            "check for a missing or extra character."
        )
    if compact.isdigit() or compact.isalpha():
        raise CodeFormatError(
            "A claim code mixes letters and digits. Please check it against the card, "
            "character by character."
        )
    # Typed in groups, each group has at least MIN_GROUP_LENGTH characters, as printed
    # (4-6-4). Words do not count as a code ("have 2 cards worth" adds up to 15), so
    # masking (which hides whatever parses) leaves ordinary sentences readable.
    groups = _SEPARATORS.split(text.strip()) if isinstance(text, str) else []
    if len(groups) > 1 and min(len(group) for group in groups) < MIN_GROUP_LENGTH:
        raise CodeFormatError(
            "Please type the claim code in its groups as printed, like AQ4T-B7XWZC-9M2P: one "
            "of the groups I got is shorter than 3 characters (a stray space or dash?)."
        )
    return compact


def has_ambiguous_characters(claim_code: str) -> bool:
    """True when the code holds characters our codes never use (a likely misreading)."""
    return any(char in AMBIGUOUS_CHARACTERS for char in claim_code.upper())


def format_claim_code(claim_code: str) -> str:
    """Group a canonical code the way it is printed: 4-6-rest (e.g. AQ4T-B7XWZC-9M2P)."""
    first, second = PRINTED_GROUP_ENDS
    return f"{claim_code[:first]}-{claim_code[first:second]}-{claim_code[second:]}"


def generate_claim_code(length: int = 14) -> str:
    while True:
        code = "".join(secrets.choice(CLAIM_CODE_ALPHABET) for _ in range(length))
        if not (code.isalpha() or code.isdigit()):
            return code


def claim_code_hmac(claim_code: str, secret: bytes) -> str:
    """The keyed hash under which a claim code is stored; the code itself is never stored."""
    canonical = parse_claim_code(claim_code)
    return hmac.new(secret, canonical.encode("ascii"), hashlib.sha256).hexdigest()


SEALED_PREFIX = "sealed:"
MASKED_CLAIM_CODE = "[claim code hidden]"


def seal_claim_code(claim_code: str, key: str) -> str:
    """A claim code encrypted (Fernet) for storage outside the wallet, e.g. a chat's slots."""
    from cryptography.fernet import Fernet

    return SEALED_PREFIX + Fernet(key.encode()).encrypt(claim_code.encode()).decode()


def unseal_claim_code(value: str, key: str) -> str:
    """The claim code in ``value``, whether sealed by :func:`seal_claim_code` or plain."""
    if not value.startswith(SEALED_PREFIX):
        return value
    from cryptography.fernet import Fernet

    return Fernet(key.encode()).decrypt(value[len(SEALED_PREFIX) :].encode()).decode()


def mask_claim_codes(text: str, *, serials: bool = False) -> str:
    """``text`` with everything that could be a claim code hidden, for stored messages,
    transcripts and the widget's history; with ``serials``, serial numbers cut to their last 4
    digits too (for people's eyes).

    One rule: whatever :func:`parse_claim_code` accepts is hidden, in any spelling ("fvxm
    5454ug e7m4", "FVXM - 5454UG - E7M4") and inside any text; see :func:`claim_code_spans`.
    It errs on the side of hiding: ordinary words that add up to a code ("card 1234 dollars")
    are hidden too. A transcript may lose a few words; it never keeps a code.
    """
    replacements = [(start, end, MASKED_CLAIM_CODE) for start, end in claim_code_spans(text)]
    if serials:
        replacements += [
            (f.start, f.end, mask_serial(f.value))
            for f in _find_numbers(text)
            if f.label == "serial_number"
        ]
    for start, end, replacement in sorted(replacements, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def claim_code_spans(text: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` to hide, merged: after hiding them nothing in the text parses
    as a claim code. Serial and order numbers are left alone (they are not secrets).

    First the codes the NLU finds (:func:`find_codes`: printed groups, a leading word left
    out); then every other run of letters and digits, joined by separators, that
    :func:`parse_claim_code` accepts. A run that overlaps a code already found is hidden only
    when all its groups look like a code's (a digit, or capitals): so "my code AQ4T-B7XWZC-9M2P
    doesn't work" keeps "my code" and "doesn't work", while a code typed right after other
    code-like groups is still hidden whole.
    """
    numbers = _find_numbers(text)
    found = [(f.start, f.end) for f in find_codes(text) if f.label == "claim_code"]
    spans = list(found)
    for chain in _token_chains(text, numbers):
        for first in range(len(chain)):
            length = 0
            for last in range(first, len(chain)):
                length += chain[last].end() - chain[last].start()
                if length > max(CLAIM_CODE_LENGTHS):
                    break
                start, end = chain[first].start(), chain[last].end()
                if length not in CLAIM_CODE_LENGTHS or not _parses(text[start:end]):
                    continue
                beside_a_code = any(s < end and start < e for s, e in found)
                code_like = all(_GROUP.fullmatch(t.group()) for t in chain[first : last + 1])
                if code_like or not beside_a_code:
                    spans.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def _token_chains(text: str, numbers: list[Found]) -> list[list[re.Match[str]]]:
    """Runs of ASCII letters and digits joined only by separators (what ``_compact`` drops),
    outside the given serial and order numbers."""
    chains: list[list[re.Match[str]]] = []
    previous_end = -1
    for token in _ALNUM_RUN.finditer(text):
        if any(f.start < token.end() and token.start() < f.end for f in numbers):
            previous_end = -1
            continue
        joined = previous_end >= 0 and _SEPARATORS.fullmatch(text[previous_end : token.start()])
        if joined:
            chains[-1].append(token)
        else:
            chains.append([token])
        previous_end = token.end()
    return chains


def _parses(candidate: str) -> bool:
    try:
        parse_claim_code(candidate)
    except CodeFormatError:
        return False
    return True


# ----------------------------------------------------------------------------- order numbers


def parse_order_number(text: object) -> str:
    """The canonical ``NNN-NNNNNNN-NNNNNNN`` (or ``D01-…``) order number in ``text``."""
    compact = _compact(text).upper()
    prefix, rest = compact[:3], compact[3:]
    if not compact:
        raise CodeFormatError("Please type the order number from your order confirmation.")
    # isascii: str.isdigit() is also true for "²" and for Arabic-Indic digits.
    if (
        compact.isascii()
        and (prefix.isdigit() or prefix == DIGITAL_ORDER_PREFIX)
        and rest.isdigit()
        and len(rest) == 14
    ):
        return f"{prefix}-{rest[:7]}-{rest[7:]}"
    raise CodeFormatError(
        "An order number looks like 123-1234567-1234567 (3, 7 and 7 digits; digital orders "
        "start with D01-). You can find it in your order confirmation email or under Your Orders."
    )


def generate_order_number(digital: bool = False) -> str:
    def digits(count: int) -> str:
        return "".join(secrets.choice("0123456789") for _ in range(count))

    prefix = DIGITAL_ORDER_PREFIX if digital else digits(3)
    return f"{prefix}-{digits(7)}-{digits(7)}"


# ---------------------------------------------------------------------------- finding in text

# Separators may stand between any two digits of a serial; a longer digit run is not a serial.
# [0-9], not \d: \d also matches non-ASCII digits, which the parsers refuse.
SERIAL_PATTERN = re.compile(r"(?<![\w-])17(?:[ \-]?[0-9]){17}(?![\w]|[ \-][0-9])")
ORDER_NUMBER_PATTERN = re.compile(
    r"(?<![\w-])(?:[0-9]{3}|[Dd]01)[ \-]?[0-9]{7}[ \-]?[0-9]{7}(?![\w-])"
)
# A claim code is typed as one token (compact or with dashes) or as space-separated groups.
_TOKEN = re.compile(r"(?<![\w@.\-])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w@\-])")
# A group of a space-separated code carries a digit or is in capitals as printed, so that
# "card 1234 dollars" is never read as a claim code.
_GROUP = re.compile(r"[A-Z0-9]+|[A-Za-z]*\d[A-Za-z0-9]*")
_MAX_GROUPS = 5


@dataclass(frozen=True)
class Found:
    label: str
    start: int
    end: int
    value: str
    """The canonical form of the matched text."""


def find_codes(text: str) -> list[Found]:
    """Every serial number, order number and claim code in free text, in order, no overlaps.

    In free text a claim code's groups must look printed (a digit, or capitals: ``_GROUP``);
    but a message that is nothing but a claim code, in any spelling :func:`parse_claim_code`
    accepts ("hbnj jdm5m6 dmpe", groups two spaces apart, " - " between them), is one: it is
    how shoppers answer "please type the claim code", and read as words it was taken for
    something out of scope."""
    whole = _whole_claim_code(text)
    if whole is not None:
        return [whole]
    found = _find_numbers(text)

    def free(start: int, end: int) -> bool:
        return all(end <= f.start or start >= f.end for f in found)

    tokens = [m for m in _TOKEN.finditer(text) if free(m.start(), m.end())]
    candidates = [_claim_code_at(text, tokens, i) for i in range(len(tokens))]
    index = 0
    while index < len(tokens):
        candidate = candidates[index]
        # "MY CODE AQ4T B7XWZC 9M2P": a leading all-letter word is not part of the code
        # when the code also reads well without it.
        while (
            candidate is not None
            and index + 1 < len(tokens)
            and tokens[index].group().isalpha()
            and candidates[index + 1] is not None
            and tokens[index + 1].start() < candidate[0].end
        ):
            index += 1
            candidate = candidates[index]
        if candidate is None:
            index += 1
            continue
        found.append(candidate[0])
        index = candidate[1]
    return sorted(found, key=lambda f: f.start)


def _find_numbers(text: str) -> list[Found]:
    """The serial and order numbers in ``text`` (a serial wins where they overlap)."""
    found: list[Found] = []
    for label, pattern, parse in (
        ("serial_number", SERIAL_PATTERN, parse_serial),
        ("order_number", ORDER_NUMBER_PATTERN, parse_order_number),
    ):
        for match in pattern.finditer(text):
            if all(match.end() <= f.start or match.start() >= f.end for f in found):
                found.append(Found(label, match.start(), match.end(), parse(match.group())))
    return found


def _whole_claim_code(text: str) -> Found | None:
    """``text`` as one claim code when that is all it is, grouped as printed (4-6-rest, groups
    joined or not, in any case, with any separators): "card 1234 dollars" parses as a
    15-character code but is grouped 4-4-7, and is none."""
    stripped = text.strip()
    if not stripped or not _parses(stripped):
        return None
    boundaries, length = set(), 0
    for group in _SEPARATORS.split(stripped)[:-1]:
        length += len(group)
        boundaries.add(length)
    if not boundaries <= set(PRINTED_GROUP_ENDS):
        return None
    start = text.index(stripped)
    return Found("claim_code", start, start + len(stripped), parse_claim_code(stripped))


def _claim_code_at(text: str, tokens: list[re.Match[str]], first: int) -> tuple[Found, int] | None:
    """The longest claim code made of tokens[first:k] (joined by single spaces), and k."""
    last = first
    while (
        last + 1 < len(tokens)
        and last + 1 - first < _MAX_GROUPS
        and text[tokens[last].end() : tokens[last + 1].start()] == " "
    ):
        last += 1
    for stop in range(last + 1, first, -1):
        window = tokens[first:stop]
        if len(window) > 1 and not all(_GROUP.fullmatch(t.group()) for t in window):
            continue
        start, end = window[0].start(), window[-1].end()
        try:
            value = parse_claim_code(text[start:end])
        except CodeFormatError:
            continue
        return Found("claim_code", start, end, value), stop
    return None
