"""Card formats (serials, claim codes, order numbers), their HMAC and masking, and money.

Property tests: what shoppers type is accepted and normalised, everything else is refused with
a hint, and no text makes a parser or ``find_codes`` raise anything else.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bot.wallet import codes
from bot.wallet.codes import (
    MIN_GROUP_LENGTH,
    CodeFormatError,
    claim_code_hmac,
    find_codes,
    parse_claim_code,
    parse_order_number,
    parse_serial,
)
from bot.wallet.money import (
    MAX_CARD_AMOUNT_MINOR,
    AmountError,
    format_money,
    parse_amount,
    to_decimal_string,
)

DIGITS = string.digits
UPPER = string.ascii_uppercase
PUNCTUATION = "!?.,;:_/\\#@*+=()[]{}'\"&%$~`|<>^"
SERIAL_RE = re.compile(r"17[0-9]{17}")
CLAIM_CODE_RE = re.compile(r"[A-Z0-9]{14,15}")
ORDER_NUMBER_RE = re.compile(r"(?:[0-9]{3}|D01)-[0-9]{7}-[0-9]{7}")
# 112-5550198-3309277 in Arabic-Indic digits, which str.isdigit() also accepts.
ARABIC_INDIC_DIGITS = "".join(chr(0x0660 + n) for n in range(10))
ARABIC_ORDER_NUMBER = "112-5550198-3309277".translate(str.maketrans(DIGITS, ARABIC_INDIC_DIGITS))
CANONICAL = {
    "serial_number": SERIAL_RE,
    "claim_code": CLAIM_CODE_RE,
    "order_number": ORDER_NUMBER_RE,
}
PARSERS: dict[str, Callable[[str], str]] = {
    "serial_number": parse_serial,
    "claim_code": parse_claim_code,
    "order_number": parse_order_number,
}

# ------------------------------------------------------------------------------ strategies

serials = st.text(DIGITS, min_size=17, max_size=17).map(lambda digits: "17" + digits)
claim_codes = st.text(UPPER + DIGITS, min_size=14, max_size=15).filter(
    lambda code: not (code.isdigit() or code.isalpha())
)
order_numbers = st.builds(
    lambda prefix, middle, last: f"{prefix}-{middle}-{last}",
    st.one_of(st.text(DIGITS, min_size=3, max_size=3), st.just("D01")),
    st.text(DIGITS, min_size=7, max_size=7),
    st.text(DIGITS, min_size=7, max_size=7),
)
# Non-ASCII characters that are neither whitespace (copy-pasted no-break spaces are fine)
# nor anything else a parser may accept.
non_ascii = st.characters(min_codepoint=0x80).filter(lambda char: not char.isspace())
unicode_digits = st.characters(categories=["Nd"]).filter(lambda char: char not in DIGITS)
surrounding_whitespace = st.text(" \t\n\r\u00a0", max_size=3)


@st.composite
def typed(draw: st.DrawFn, canonical: str, vary_case: bool = True, min_group: int = 1) -> str:
    """``canonical`` as a shopper might type it: separators anywhere between groups of at
    least ``min_group`` characters, any case, padding."""
    pieces, group = [], 0
    chars = canonical.replace("-", "")
    for index, char in enumerate(chars):
        if group >= min_group and len(chars) - index >= min_group and draw(st.booleans()):
            pieces.append(draw(st.sampled_from([" ", "-", "  ", " - ", "--", "\t"])))
            group = 0
        pieces.append(char.lower() if vary_case and draw(st.booleans()) else char)
        group += 1
    return draw(surrounding_whitespace) + "".join(pieces) + draw(surrounding_whitespace)


def with_variant(
    values: st.SearchStrategy[str], min_group: int = 1
) -> st.SearchStrategy[tuple[str, str]]:
    return values.flatmap(
        lambda value: st.tuples(st.just(value), typed(value, min_group=min_group))
    )


@st.composite
def with_char_replaced(draw: st.DrawFn, value: str, chars: st.SearchStrategy[str]) -> str:
    index = draw(st.integers(0, len(value) - 1))
    return value[:index] + draw(chars) + value[index + 1 :]


@st.composite
def with_char_inserted(draw: st.DrawFn, value: str, chars: st.SearchStrategy[str]) -> str:
    index = draw(st.integers(0, len(value)))
    return value[:index] + draw(chars) + value[index:]


def assert_refused(parse: Callable[[str], str], text: str) -> CodeFormatError:
    with pytest.raises(CodeFormatError) as info:
        parse(text)
    hint = info.value.hint
    assert hint.strip(), "a refusal must tell the shopper what is wrong"
    assert "\n" not in hint
    return info.value


# -------------------------------------------------------------------------- serial numbers


@given(with_variant(serials))
def test_serial_accepts_spaces_dashes_and_padding(case: tuple[str, str]) -> None:
    serial, text = case
    assert parse_serial(text) == serial


@pytest.mark.parametrize(
    "text", ["1712 3456 7890 1234 567", "1712-3456-7890-1234-567", "  1712345678901234567\n"]
)
def test_serial_known_spellings(text: str) -> None:
    assert parse_serial(text) == "1712345678901234567"


@given(st.text(DIGITS, max_size=40).filter(lambda digits: len(digits) != 17))
def test_serial_of_wrong_length_is_refused(digits: str) -> None:
    error = assert_refused(parse_serial, "17" + digits)
    assert "19" in error.hint


@given(serials.flatmap(lambda s: with_char_replaced(s, st.sampled_from(string.ascii_letters))))
def test_serial_with_a_letter_is_refused(text: str) -> None:
    error = assert_refused(parse_serial, text)
    assert "letter" in error.hint


@given(st.text(DIGITS, min_size=19, max_size=19).filter(lambda d: not d.startswith("17")))
def test_serial_with_wrong_prefix_is_refused(text: str) -> None:
    error = assert_refused(parse_serial, text)
    assert "17" in error.hint


@given(serials.flatmap(lambda s: with_char_inserted(s, st.sampled_from(PUNCTUATION))))
def test_serial_with_punctuation_is_refused(text: str) -> None:
    assert_refused(parse_serial, text)


@given(serials.flatmap(lambda s: with_char_replaced(s, non_ascii)))
def test_serial_with_a_non_ascii_character_is_refused(text: str) -> None:
    assert_refused(parse_serial, text)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", " - - "])
def test_empty_serial_is_refused(text: str) -> None:
    assert_refused(parse_serial, text)


def test_mask_serial_shows_only_the_last_four_digits() -> None:
    assert codes.mask_serial("1712345678901234567") == "••••4567"


@given(serials)
def test_masked_serial_holds_no_other_digit(serial: str) -> None:
    masked = codes.mask_serial(serial)
    assert re.sub(r"[^0-9]", "", masked) == serial[-4:]
    assert masked.endswith(serial[-4:])


# ----------------------------------------------------------------------------- claim codes


@given(with_variant(claim_codes, min_group=MIN_GROUP_LENGTH))
def test_claim_code_accepts_spaces_dashes_lower_case_and_padding(case: tuple[str, str]) -> None:
    code, text = case
    assert parse_claim_code(text) == code


@pytest.mark.parametrize("text", ["AQ4T B7XWZC 9M2 P", "A Q4TB7XWZC9M2P", "have 2 cards worth"])
def test_claim_code_groups_shorter_than_printed_are_refused(text: str) -> None:
    assert "groups as printed" in assert_refused(parse_claim_code, text).hint


def test_claim_code_as_printed() -> None:
    assert parse_claim_code("aq4t-b7xwzc-9m2p") == "AQ4TB7XWZC9M2P"
    assert parse_claim_code(" AQ4T B7XWZC 9M2P ") == "AQ4TB7XWZC9M2P"


@given(
    st.text(UPPER + DIGITS + string.ascii_lowercase, min_size=1, max_size=30).filter(
        lambda text: len(text) not in codes.CLAIM_CODE_LENGTHS
    )
)
def test_claim_code_of_wrong_length_is_refused(text: str) -> None:
    assert_refused(parse_claim_code, text)


@given(
    st.one_of(
        st.text(DIGITS, min_size=14, max_size=15),
        st.text(string.ascii_letters, min_size=14, max_size=15),
    )
)
def test_all_digit_or_all_letter_claim_code_is_refused(text: str) -> None:
    error = assert_refused(parse_claim_code, text)
    assert "mixes letters and digits" in error.hint


@given(serials.flatmap(lambda serial: typed(serial, vary_case=False)))
def test_serial_given_as_claim_code_is_refused_with_a_pointer(text: str) -> None:
    error = assert_refused(parse_claim_code, text)
    assert "serial number" in error.hint


@given(claim_codes.flatmap(lambda c: with_char_inserted(c, st.sampled_from(PUNCTUATION))))
def test_claim_code_with_punctuation_is_refused(text: str) -> None:
    assert_refused(parse_claim_code, text)


@example("\u0131Q4T-B7XWZC-9M2P")  # dotless i: upper-cases to an ASCII "I"
@example("AQ4T-B7XWZC-9M2\u00df")  # sharp s: upper-cases to "SS"
@given(claim_codes.flatmap(lambda code: with_char_replaced(code, non_ascii)))
def test_claim_code_with_a_non_ascii_character_is_refused(text: str) -> None:
    assert_refused(parse_claim_code, text)


@given(
    st.text(UPPER + DIGITS, min_size=8, max_size=30).filter(
        lambda text: any(c.isdigit() for c in text) and len(text) not in (14, 15)
    )
)
def test_claim_code_hint_never_echoes_the_code(text: str) -> None:
    error = assert_refused(parse_claim_code, text)
    assert text not in error.hint


@given(claim_codes)
def test_formatted_claim_code_reads_back(code: str) -> None:
    printed = codes.format_claim_code(code)
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{6}-[A-Z0-9]{4,5}", printed)
    assert parse_claim_code(printed) == code


def test_ambiguous_characters() -> None:
    assert codes.has_ambiguous_characters("AQ4T-B7XWZC-9M2O")
    assert codes.has_ambiguous_characters("aq4t-b7xwzc-9m2l")
    assert not codes.has_ambiguous_characters("AQ4T-B7XWZC-9M2P")


# ---------------------------------------------------------------------------- order numbers


@given(with_variant(order_numbers))
def test_order_number_accepts_spaces_dashes_lower_case_and_padding(
    case: tuple[str, str],
) -> None:
    number, text = case
    assert parse_order_number(text) == number


def test_order_number_known_spellings() -> None:
    assert parse_order_number("d01-4826153-7730941") == "D01-4826153-7730941"
    assert parse_order_number("112 5550198 3309277") == "112-5550198-3309277"
    assert parse_order_number("11255501983309277") == "112-5550198-3309277"


@given(
    st.one_of(
        st.text(DIGITS, min_size=1, max_size=30).filter(lambda digits: len(digits) != 17),
        st.text(DIGITS, max_size=30).filter(lambda d: len(d) != 14).map(lambda d: "D01" + d),
    ).flatmap(typed)
)
def test_order_number_with_wrong_number_of_digits_is_refused(text: str) -> None:
    assert_refused(parse_order_number, text)


@given(
    order_numbers.flatmap(
        lambda n: with_char_replaced(n[4:], st.sampled_from(string.ascii_letters)).map(
            lambda rest: n[:4] + rest
        )
    )
)
def test_order_number_with_a_letter_is_refused(text: str) -> None:
    assume(re.search("[A-Za-z]", text[4:]))
    assert_refused(parse_order_number, text)


@given(
    st.text(UPPER + DIGITS, min_size=3, max_size=3).filter(
        lambda prefix: not prefix.isdigit() and prefix != "D01"
    ),
    st.text(DIGITS, min_size=14, max_size=14),
)
def test_order_number_with_wrong_prefix_is_refused(prefix: str, digits: str) -> None:
    assert_refused(parse_order_number, f"{prefix}-{digits[:7]}-{digits[7:]}")


@given(order_numbers.flatmap(lambda n: with_char_inserted(n, st.sampled_from(PUNCTUATION))))
def test_order_number_with_punctuation_is_refused(text: str) -> None:
    assert_refused(parse_order_number, text)


@example(ARABIC_ORDER_NUMBER)
@example("1²3-1234567-1234567")
@given(order_numbers.flatmap(lambda n: with_char_replaced(n, st.one_of(non_ascii, unicode_digits))))
def test_order_number_with_a_non_ascii_character_is_refused(text: str) -> None:
    assert_refused(parse_order_number, text)


# ------------------------------------------------------------------------- arbitrary text


@pytest.mark.parametrize("label", sorted(PARSERS))
@given(text=st.text())
def test_parsers_never_crash_and_return_canonical_values(label: str, text: str) -> None:
    parse = PARSERS[label]
    try:
        value = parse(text)
    except CodeFormatError as error:
        assert error.hint.strip()
        return
    assert CANONICAL[label].fullmatch(value), value
    assert parse(value) == value


def _check_found(text: str) -> list[codes.Found]:
    found = find_codes(text)
    ends = [0]
    for item in found:
        assert CANONICAL[item.label].fullmatch(item.value), item
        assert PARSERS[item.label](text[item.start : item.end]) == item.value
        assert ends[-1] <= item.start < item.end <= len(text), "overlapping or out of order"
        ends.append(item.end)
    return found


@given(st.text())
def test_find_codes_never_crashes_on_any_text(text: str) -> None:
    _check_found(text)


@example("serial 17" + "\u0661" * 17)  # Arabic-Indic digits: a \d-shaped run that is no serial
@example("order " + ARABIC_ORDER_NUMBER + " please")
@given(
    st.text(
        st.one_of(st.sampled_from("0123456789 -17DaA"), unicode_digits),
        min_size=10,
        max_size=60,
    )
)
def test_find_codes_never_crashes_on_digit_runs(text: str) -> None:
    _check_found(text)


# --------------------------------------------------------------------- finding in sentences

words = st.lists(
    st.sampled_from(
        ["hi", "my", "serial", "number", "is", "the", "card", "says", "order", "claim", "code:"]
    ),
    max_size=4,
).map(" ".join)
endings = st.sampled_from(["", ".", "!", "?", ",", " thanks", " please help"])


@st.composite
def serial_as_typed_in_chat(draw: st.DrawFn, serial: str) -> str:
    """Single spaces or dashes between digits, as the serial pattern reads them."""
    text = serial[:2]
    for digit in serial[2:]:
        text += draw(st.sampled_from(["", "", " ", "-"])) + digit
    return text


@st.composite
def claim_code_as_typed_in_chat(draw: st.DrawFn, code: str) -> str:
    style = draw(st.sampled_from(["compact", "dashes", "printed", "printed-spaces"]))
    if style == "printed":
        text = codes.format_claim_code(code)
    elif style == "printed-spaces":  # groups separated by spaces stay in capitals, as printed
        return codes.format_claim_code(code).replace("-", " ")
    elif style == "dashes":  # between any groups of at least MIN_GROUP_LENGTH
        text, group = code[0], 1
        for index, char in enumerate(code[1:], start=1):
            room = group >= MIN_GROUP_LENGTH and len(code) - index >= MIN_GROUP_LENGTH
            if room and draw(st.booleans()):
                text, group = text + "-", 0
            text, group = text + char, group + 1
    else:
        text = code
    return "".join(c.lower() if draw(st.booleans()) else c for c in text)


@st.composite
def order_number_as_typed_in_chat(draw: st.DrawFn, number: str) -> str:
    prefix, middle, last = number.split("-")
    if prefix == "D01" and draw(st.booleans()):
        prefix = "d01"
    sep = st.sampled_from(["-", " ", ""])
    return f"{prefix}{draw(sep)}{middle}{draw(sep)}{last}"


@given(words, serials.flatmap(lambda s: st.tuples(st.just(s), serial_as_typed_in_chat(s))), endings)
def test_find_codes_finds_a_serial_in_a_sentence(
    before: str, case: tuple[str, str], after: str
) -> None:
    serial, typed_serial = case
    text = f"{before} {typed_serial}{after}".strip()
    found = _check_found(text)
    assert [(f.label, f.value) for f in found] == [("serial_number", serial)]
    assert text[found[0].start : found[0].end] == typed_serial


@given(
    words,
    claim_codes.flatmap(lambda c: st.tuples(st.just(c), claim_code_as_typed_in_chat(c))),
    endings,
)
def test_find_codes_finds_a_claim_code_in_a_sentence(
    before: str, case: tuple[str, str], after: str
) -> None:
    code, typed_code = case
    text = f"{before} {typed_code}{after}".strip()
    found = _check_found(text)
    assert [(f.label, f.value) for f in found] == [("claim_code", code)]
    assert text[found[0].start : found[0].end] == typed_code


@given(
    words,
    order_numbers.flatmap(lambda n: st.tuples(st.just(n), order_number_as_typed_in_chat(n))),
    endings,
)
def test_find_codes_finds_an_order_number_in_a_sentence(
    before: str, case: tuple[str, str], after: str
) -> None:
    number, typed_number = case
    text = f"{before} {typed_number}{after}".strip()
    found = _check_found(text)
    assert [(f.label, f.value) for f in found] == [("order_number", number)]


@given(serials, claim_codes, order_numbers)
def test_find_codes_finds_all_three_in_order(serial: str, code: str, number: str) -> None:
    text = (
        f"Hi, card {serial[:4]} {serial[4:8]} {serial[8:12]} {serial[12:16]} {serial[16:]}, "
        f"order {number} and the code is {codes.format_claim_code(code).lower()}."
    )
    found = _check_found(text)
    assert [(f.label, f.value) for f in found] == [
        ("serial_number", serial),
        ("order_number", number),
        ("claim_code", code),
    ]


def test_find_codes_skips_a_leading_capitalised_word() -> None:
    found = find_codes("MY CODE AQ4T B7XWZC 9M2P")
    assert [(f.label, f.value) for f in found] == [("claim_code", "AQ4TB7XWZC9M2P")]


@pytest.mark.parametrize("run", range(50))
def test_a_message_that_is_only_a_claim_code_is_one_in_every_printed_spelling(run: int) -> None:
    """How shoppers answer "please type the claim code", every spelling the probe tests use
    (tests/security/test_probe.py): lower case, two spaces, " - ", the first groups joined."""
    code = codes.generate_claim_code(codes.CLAIM_CODE_LENGTHS[run % 2])
    a, b, c = code[:4], code[4:10], code[10:]
    for text in (f"{a} {b} {c}".lower(), f"{a}  {b}  {c}", f" {a} - {b} - {c} ", f"{a}{b} {c}"):
        assert [(f.label, f.value) for f in _check_found(text)] == [("claim_code", code)], text


@pytest.mark.parametrize(
    "text",
    [
        "card 1234 dollars",  # parses as a 15-character code, but grouped 4-4-7: not printed
        "card1234 dollars9",
        "I have a card worth 1234 dollars",
        "my serial is 17123456789012345678",  # 20 digits: not a serial
        "call 555-123-4567",
        "hello there, how are you",
        "email me at ann1234567890abc@example.com",
    ],
)
def test_find_codes_finds_nothing_in_ordinary_text(text: str) -> None:
    assert _check_found(text) == []


# -------------------------------------------------------------------------- generated values


@pytest.mark.parametrize("run", range(200))
def test_generated_values_always_parse(run: int) -> None:
    serial = codes.generate_serial()
    assert parse_serial(serial) == serial
    for length in codes.CLAIM_CODE_LENGTHS:
        code = codes.generate_claim_code(length)
        assert len(code) == length
        assert parse_claim_code(code) == code
        assert not codes.has_ambiguous_characters(code)
    for digital in (False, True):
        number = codes.generate_order_number(digital=digital)
        assert parse_order_number(number) == number
        assert number.startswith("D01-") == digital


# ----------------------------------------------------------------------------- claim HMAC


@given(with_variant(claim_codes, min_group=MIN_GROUP_LENGTH), st.binary(min_size=16, max_size=64))
def test_claim_code_hmac_is_the_same_for_every_spelling(
    case: tuple[str, str], secret: bytes
) -> None:
    code, text = case
    digest = claim_code_hmac(text, secret)
    assert digest == claim_code_hmac(code, secret)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert code.lower() not in digest


@given(claim_codes, st.binary(min_size=16, max_size=64), st.binary(min_size=16, max_size=64))
def test_claim_code_hmac_depends_on_the_secret(code: str, one: bytes, other: bytes) -> None:
    assume(one != other)
    assert claim_code_hmac(code, one) != claim_code_hmac(code, other)


@given(claim_codes, claim_codes, st.binary(min_size=16, max_size=64))
def test_claim_code_hmac_differs_across_codes(code: str, other: str, secret: bytes) -> None:
    assume(code != other)
    assert claim_code_hmac(code, secret) != claim_code_hmac(other, secret)


def test_claim_code_hmac_refuses_a_malformed_code() -> None:
    assert_refused(lambda text: claim_code_hmac(text, b"k" * 32), "not a code")


# ----------------------------------------------------------------------------------- money


@given(st.integers(1, MAX_CARD_AMOUNT_MINOR), st.sampled_from(["USD", "EUR", "GBP"]))
def test_money_round_trips(minor: int, currency: str) -> None:
    assert parse_amount(to_decimal_string(minor)) == minor
    assert parse_amount(format_money(minor, currency)) == minor


@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2000"), places=2),
    st.sampled_from(["", "$", "€", "£"]),
    surrounding_whitespace,
)
def test_positive_amounts_with_two_decimals_are_accepted(
    value: Decimal, symbol: str, padding: str
) -> None:
    assert parse_amount(f"{padding}{symbol}{value}{padding}") == int(value * 100)


@pytest.mark.parametrize(
    ("text", "minor"),
    [("50", 5000), ("50.00", 5000), ("$1,000.5", 100050), (" 0.01 ", 1), ("£2,000", 200000)],
)
def test_amount_spellings(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


def assert_amount_refused(text: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(text)
    assert str(info.value).strip()
    assert "\n" not in str(info.value)


@given(st.integers(1, 2_000_999).filter(lambda n: n % 10 != 0))
def test_more_than_two_decimals_is_refused(thousandths: int) -> None:
    assert_amount_refused(f"{thousandths // 1000}.{thousandths % 1000:03d}")


@given(st.decimals(max_value=Decimal(0), allow_nan=False, allow_infinity=False, places=2))
def test_zero_and_negative_amounts_are_refused(value: Decimal) -> None:
    assert_amount_refused(str(value))


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "$",
        "fifty",
        "1.2.3",
        "12abc",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "0",
        "-0",
        "$0.00",
        "-5",
        "2000.01",
        "1e30",  # far above the limit: must be refused, not crash on rounding
        "1e999999",
        "1e9999999",
        "1e-9999999",
        "9" * 40,
    ],
)
def test_bad_amounts_are_refused(text: str) -> None:
    assert_amount_refused(text)


@given(st.text(string.ascii_letters + " ", min_size=1))
def test_non_numeric_amounts_are_refused(text: str) -> None:
    assert_amount_refused(text)


@example("1e30")
@example("1e999999")
@example("9" * 60)
@given(st.text())
def test_parse_amount_never_crashes(text: str) -> None:
    try:
        minor = parse_amount(text)
    except AmountError:
        return
    assert 1 <= minor <= MAX_CARD_AMOUNT_MINOR


@given(st.integers(-(10**12), 10**12))
def test_format_money(minor: int) -> None:
    formatted = format_money(minor)
    assert re.fullmatch(r"-?\$\d{1,3}(,\d{3})*\.\d{2}", formatted)
    assert formatted.startswith("-") == (minor < 0)
    assert Decimal(formatted.lstrip("-$").replace(",", "")) * 100 == abs(minor)
