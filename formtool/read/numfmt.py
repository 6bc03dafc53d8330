"""Excel number formats: the text a cell shows for the number it holds.

An auditor who types 05/11/2026 into a text answer cell sees 05/11/2026, but Excel stores the
serial 46331 with a date format; 75% is stored as 0.75 with a percent format. The reader stores
what the auditor saw, so it applies the cell's format the way Excel does: built-in formats by
id (ECMA-376 18.8.30, as a UK Excel shows them) and custom format codes (sections, literals,
digit placeholders, thousands, percent, scientific, fractions, dates and times). Any date with
a day, month and year is shown in formtool's own date text (show_date), whatever its format,
so the same answer reads the same from every return.

`General` follows Excel's rule for a wide cell: at most 11 characters, else six significant
digits in scientific notation (1.23457E+11). Formats this module cannot follow show the
number as General.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from formtool.periods import show_date, show_time

GENERAL = "General"
TEXT = "@"
MAX_CODE = 255  # Excel's longest format code; longer ones are not formats Excel wrote
#: Built-in formats by numFmtId, as Excel shows them with UK settings (14 and 22 follow the
#: system's short date, dd/mm/yyyy here; 5-8 the system's currency).
BUILTIN = {
    0: GENERAL,
    1: "0",
    2: "0.00",
    3: "#,##0",
    4: "#,##0.00",
    5: '"£"#,##0;\\-"£"#,##0',
    6: '"£"#,##0;[Red]\\-"£"#,##0',
    7: '"£"#,##0.00;\\-"£"#,##0.00',
    8: '"£"#,##0.00;[Red]\\-"£"#,##0.00',
    9: "0%",
    10: "0.00%",
    11: "0.00E+00",
    12: "# ?/?",
    13: "# ??/??",
    14: "dd/mm/yyyy",
    15: "d-mmm-yy",
    16: "d-mmm",
    17: "mmm-yy",
    18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM",
    20: "h:mm",
    21: "h:mm:ss",
    22: "dd/mm/yyyy hh:mm",
    37: "#,##0 ;(#,##0)",
    38: "#,##0 ;[Red](#,##0)",
    39: "#,##0.00;(#,##0.00)",
    40: "#,##0.00;[Red](#,##0.00)",
    45: "mm:ss",
    46: "[h]:mm:ss",
    47: "mmss.0",
    48: "##0.0E+0",
    49: TEXT,
    # East Asian built-in dates (27-36, 50-58): a date, shown as formtool's date
    **dict.fromkeys((*range(27, 37), *range(50, 59)), "dd/mm/yyyy"),
}
_TOKEN = re.compile(
    r'"(?P<quoted>[^"]*)"?'
    r"|\\(?P<escaped>.)"
    r"|_(?P<space>.)"
    r"|\*(?P<fill>.)"
    r"|\[(?P<bracket>[^\]]*)\]"
    r"|(?P<general>general)"
    r"|(?P<ampm>am/pm|a/p)"
    r"|(?P<exponent>e[+-])"
    r"|(?P<date>y+|m+|d+|h+|s+|e+)"
    r"|(?P<other>.)",
    re.IGNORECASE | re.DOTALL,
)
_ELAPSED = re.compile(r"(h+|m+|s+)", re.IGNORECASE)
_CONDITION = re.compile(r"\[(<=|>=|<>|<|>|=)\s*(-?[\d.]+(?:e[+-]?\d+)?)\]", re.IGNORECASE)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def format_code(number_format_id: int, custom: dict[int, str]) -> str:
    """The format code of a cell's numFmtId: the workbook's own, else Excel's built-in one,
    else General (Excel shows an unknown id as General)."""
    code = custom.get(number_format_id)
    if code is not None and len(code) <= MAX_CODE:
        return code
    return BUILTIN.get(number_format_id, GENERAL)


def general(value: float) -> str:
    """A number as Excel's General format shows it in a wide cell (at most 11 characters)."""
    if not math.isfinite(value):
        return "#NUM!"
    if value == int(value) and abs(value) < 1e11:
        return str(int(value))
    width = 12 if value < 0 else 11  # the minus sign is not counted
    power = math.floor(math.log10(abs(value)))
    if -4 <= power <= -1:  # 0.000123457: nine decimals, whatever the leading zeros
        return _strip(f"{value:.9f}")
    if -9 <= power <= 10:
        for text in (f"{value:.12f}", f"{value:.{max(0, 9 - power)}f}"):
            if len(_strip(text)) <= width:
                return _strip(text)
    return _scientific(value)


def _strip(text: str) -> str:
    """Trailing zeros of the decimals (and a bare decimal point) removed."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scientific(value: float) -> str:
    mantissa, _, power = f"{value:.5E}".partition("E")
    return f"{_strip(mantissa)}E{power[0]}{int(power[1:]):02d}"


def shown(value: float, code: str, date1904: bool = False) -> str:
    """The text a number shows in a cell of format `code`."""
    if not math.isfinite(value):
        return general(value)
    try:
        return _shown(value, code, date1904)
    except (ArithmeticError, ValueError):  # a format and number no real cell pairs
        return general(value)


def _shown(value: float, code: str, date1904: bool) -> str:
    sections = _sections(code[:MAX_CODE])
    section, negative_sign = _section(value, sections)
    if section is None:
        return general(value)
    tokens = _tokens(section)
    if any(kind in ("date", "ampm") for kind, _ in tokens) or _elapsed(tokens):
        if not 0 <= value <= 2_958_465.99999:
            return general(value)  # Excel fills the cell with ####
        return _date(value, tokens, date1904)
    number = abs(value) if not negative_sign else value
    if any(kind == "general" for kind, _ in tokens) or section.strip() in ("", TEXT):
        return _literals(tokens, general(abs(number)), "-" if number < 0 else "")
    return _number(number, tokens)


def shown_text(text: str, code: str) -> str:
    """The text a text cell shows: the format's text section (`@` is the text) if any."""
    sections = _sections(code[:MAX_CODE])
    if len(sections) >= 4:  # the fourth section is for text, with or without @
        found: str | None = sections[3]
    else:
        found = next((s for s in sections if "@" in s), None)
    if found is None:
        return text
    tokens = _tokens(found)
    return "".join(text if (k, v) == ("other", "@") else _literal(k, v) for k, v in tokens)


def _tokens(section: str) -> list[tuple[str, str]]:
    """A section as (kind, text) tokens: quoted, escaped, space, fill, bracket, general,
    ampm, exponent, date or other (one character)."""
    return [
        (m.lastgroup or "other", m[m.lastgroup or "other"] or "") for m in _TOKEN.finditer(section)
    ]


def _sections(code: str) -> list[str]:
    """A format code split at its unquoted, unescaped semicolons."""
    sections, start, quoted, index = [], 0, False, 0
    while index < len(code):
        char = code[index]
        if char == '"':
            quoted = not quoted
        elif char == "\\" and not quoted:
            index += 1
        elif char == ";" and not quoted:
            sections.append(code[start:index])
            start = index + 1
        index += 1
    sections.append(code[start:])
    return sections


def _section(value: float, sections: list[str]) -> tuple[str | None, bool]:
    """The section a number is shown with, and whether it shows its own minus sign (a
    single section does; the negative section of two or three shows the number unsigned)."""
    conditions = [_CONDITION.search(s) for s in sections[:3]]
    if any(conditions):
        for section, condition in zip(sections[:3], conditions, strict=False):
            if condition is None or _holds(value, condition[1], condition[2]):
                return section, condition is None and value < 0
        return None, True
    if value < 0 and len(sections) >= 2:
        return sections[1], False
    if value == 0 and len(sections) >= 3:
        return sections[2], False
    return sections[0], True


def _holds(value: float, operator: str, limit: str) -> bool:
    try:
        bound = float(limit)
    except ValueError:  # "[>.]": not a condition Excel would have saved
        return False
    return {
        "<": value < bound,
        ">": value > bound,
        "=": value == bound,
        "<=": value <= bound,
        ">=": value >= bound,
        "<>": value != bound,
    }[operator]


def _literal(kind: str, text: str) -> str:
    """What a non-placeholder token shows: quoted and escaped text, a space for `_x`,
    nothing for fills and colours, the symbol of a currency `[$£-809]`."""
    if kind in ("quoted", "escaped", "other"):
        return text
    if kind == "space":
        return " "
    if kind == "bracket" and text.startswith("$"):
        return text[1:].split("-", 1)[0]
    return ""


def _literals(tokens: list[tuple[str, str]], body: str, sign: str) -> str:
    """Literal text around one placeholder (General or `@`), which shows `body`."""
    out, placed = [], False
    for kind, text in tokens:
        if kind == "general" or (kind, text) == ("other", TEXT):
            out.append(body)
            placed = True
        else:
            out.append(_literal(kind, text))
    return sign + ("".join(out) if placed else "".join(out) + body)


# ---- numbers ---------------------------------------------------------------------------------


def _number(value: float, tokens: list[tuple[str, str]]) -> str:
    places = [i for i, (k, t) in enumerate(tokens) if k == "other" and t in "0#?"]
    if not places:  # literal text only, e.g. "n/a"
        return "".join(_literal(k, t) for k, t in tokens)
    scale = 100 ** sum(1 for k, t in tokens if (k, t) == ("other", "%"))
    if any(k == "exponent" for k, _ in tokens):
        return _exponent(value * scale, tokens)
    if any((k, t) == ("other", "/") for k, t in tokens):
        return _fraction(value * scale, tokens, places)
    point = next((i for i, (k, t) in enumerate(tokens) if (k, t) == ("other", ".")), None)
    whole_places = [i for i in places if point is None or i < point]
    decimals = [tokens[i][1] for i in places if point is not None and i > point]
    commas = [i for i, (k, t) in enumerate(tokens) if (k, t) == ("other", ",")]
    last_whole = whole_places[-1] if whole_places else -1
    grouped = any(whole_places and whole_places[0] < i < last_whole for i in commas)
    trailing = sum(1 for i in commas if i > last_whole and (point is None or i < point))
    amount = _decimal(value * scale / 1000**trailing, len(decimals))
    whole, _, fraction = f"{abs(amount):f}".partition(".")
    digits = _fill_whole(whole.lstrip("0"), [tokens[i][1] for i in whole_places], grouped)
    shown_decimals = _fill_decimals(fraction.ljust(len(decimals), "0"), decimals)
    sign = "-" if amount < 0 and (whole.strip("0") or fraction.strip("0")) else ""
    out, slot = [], 0
    for index, (kind, text) in enumerate(tokens):
        if index in whole_places:
            out.append(digits[slot] if slot < len(digits) else "")
            slot += 1
        elif index == point:  # with no whole placeholder (.00) the whole digits go here
            out.append(("" if whole_places else whole.lstrip("0")) + "." + shown_decimals)
        elif index in places or (kind, text) in (("other", ","), ("other", "%")):
            out.append("%" if text == "%" else "")
        else:
            out.append(_literal(kind, text))
    return sign + "".join(out)


def _decimal(value: float, places: int) -> Decimal:
    """The value rounded half away from zero at `places` decimals, from Excel's 15
    significant digits (so 2.675 at two places is 2.68, as Excel shows it)."""
    try:
        return Decimal(f"{value:.15g}").quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    except InvalidOperation:  # too many digits for the context: show it as it is
        return Decimal(f"{value:.15g}")


def _fill_whole(digits: str, places: list[str], grouped: bool) -> list[str]:
    """The text each whole-number placeholder shows, right to left; the leftmost takes the
    digits left over. `0` pads with zeros, `?` with spaces, `#` with nothing."""
    out = [""] * len(places)
    rest = digits
    for index in range(len(places) - 1, -1, -1):
        if index == 0:
            out[0] = rest or {"0": "0", "?": " "}.get(places[0], "")
            break
        out[index] = rest[-1:] or {"0": "0", "?": " "}.get(places[index], "")
        rest = rest[:-1]
    if grouped:
        joined = "".join(out)
        stripped = joined.lstrip(" ")
        if stripped.isdigit():
            return [
                joined[: len(joined) - len(stripped)] + f"{int(stripped):,}",
                *[""] * (len(out) - 1),
            ]
    return out


def _fill_decimals(digits: str, places: list[str]) -> str:
    """Decimal digits under their placeholders: trailing zeros dropped under `#`, spaces
    under `?`."""
    out = list(digits[: len(places)])
    for index in range(len(out) - 1, -1, -1):
        if out[index] != "0" or places[index] == "0":
            break
        out[index] = " " if places[index] == "?" else ""
    return "".join(out)


def _exponent(value: float, tokens: list[tuple[str, str]]) -> str:
    """Scientific notation: 0.00E+00 -> 1.23E+04; ##0.0E+0 puts the exponent in steps of 3."""
    where = next(i for i, (k, _) in enumerate(tokens) if k == "exponent")
    head = [t for k, t in tokens[:where] if k == "other"]
    point = head.index(".") if "." in head else len(head)
    whole = [t for t in head[:point] if t in "0#?"]
    decimals = [t for t in head[point:] if t in "0#?"]
    power_digits = sum(1 for k, t in tokens[where + 1 :] if k == "other" and t in "0#?")
    step = len(whole) if len(whole) > 1 and "#" in whole else 1
    power = math.floor(math.log10(abs(value)) / step) * step if value else 0
    mantissa = _decimal(value / 10**power, len(decimals))
    if abs(mantissa) >= 10**step:
        power += step
        mantissa = _decimal(value / 10**power, len(decimals))
    whole_digits, _, fraction = f"{mantissa:f}".partition(".")
    body = whole_digits + ("." + _fill_decimals(fraction, decimals) if "." in head else "")
    sign = "-" if power < 0 else ("+" if tokens[where][1].endswith("+") else "")
    prefix = "".join(_literal(k, t) for k, t in tokens[:where] if k != "other" or t not in "0#?.,")
    return f"{prefix}{body}E{sign}{abs(power):0{max(power_digits, 1)}d}"


def _fraction(value: float, tokens: list[tuple[str, str]], places: list[int]) -> str:
    """# ?/? and friends: a whole part (when the format has one before a space) and a
    fraction whose denominator has at most as many digits as its placeholders, or is the
    fixed denominator written (# ?/8)."""
    slash = next(i for i, (k, t) in enumerate(tokens) if (k, t) == ("other", "/"))
    after = "".join(t for k, t in tokens[slash + 1 :] if k == "other" and t in "0123456789#?")
    before = [i for i in places if i < slash]
    has_whole = bool(before) and ("other", " ") in tokens[before[0] : slash]
    sign, value = ("-" if value < 0 else ""), abs(value)
    whole = int(value) if has_whole else 0
    if after.isdigit():
        denominator = int(after) or 1
        numerator = round((value - whole) * denominator)
    else:
        part = Fraction(value - whole).limit_denominator(10 ** max(1, len(after)) - 1)
        numerator, denominator = part.numerator, part.denominator
    if has_whole and numerator == denominator:
        whole, numerator = whole + 1, 0
    if not has_whole:
        return f"{sign}{numerator}/{denominator}"
    if numerator == 0:
        return f"{sign}{whole}"
    return f"{sign}{f'{whole} ' if whole else ''}{numerator}/{denominator}"


# ---- dates and times -------------------------------------------------------------------------


def _elapsed(tokens: list[tuple[str, str]]) -> bool:
    return any(kind == "bracket" and _ELAPSED.fullmatch(text) for kind, text in tokens)


def _moment(value: float, date1904: bool) -> dt.datetime:
    """The date and time an Excel serial stands for (Excel's 1900 leap-year bug kept: the
    serials before 1 March 1900 are a day early, as excel_serial_date has them)."""
    epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
    seconds = round(value * 86_400)
    return epoch + dt.timedelta(seconds=seconds)


def _date(value: float, tokens: list[tuple[str, str]], date1904: bool) -> str:
    """A date shown as formtool's date (with the time, if the format shows one); a time or
    a part of a date (d-mmm, mmm-yy) as the format writes it."""
    moment = _moment(value, date1904)
    kinds = _date_kinds(tokens)
    letters = {kind[0] for kind in kinds.values()}
    if {"d", "M", "y"} <= letters:
        return show_time(moment) if letters & {"h", "m", "s"} else show_date(moment.date())
    twelve = any(kind == "ampm" for kind, _ in tokens)
    out = []
    for index, (kind, text) in enumerate(tokens):
        if index in kinds:
            out.append(_part(kinds[index], text, moment, value, twelve))
        elif kind == "ampm":
            am = moment.hour < 12
            out.append(("AM" if am else "PM") if len(text) > 3 else ("A" if am else "P"))
        elif kind == "bracket" and _ELAPSED.fullmatch(text):
            total = value * {"h": 24, "m": 1440, "s": 86_400}[text[0].lower()]
            out.append(f"{int(total):0{len(text)}d}")
        else:
            out.append(_literal(kind, text))
    return "".join(out)


def _date_kinds(tokens: list[tuple[str, str]]) -> dict[int, str]:
    """Each date token's meaning: y, M (month), d, h, m (minute), s. An `m` is minutes right
    after hours or right before seconds, as Excel reads it."""
    found = [(i, t.lower()) for i, (k, t) in enumerate(tokens) if k == "date"]
    kinds = {}
    for position, (index, text) in enumerate(found):
        letter = "y" if text[0] == "e" else text[0]
        if letter == "m":
            before = found[position - 1][1][0] if position else ""
            after = found[position + 1][1][0] if position + 1 < len(found) else ""
            elapsed_before = any(k == "bracket" and t[:1].lower() == "h" for k, t in tokens[:index])
            letter = "m" if before == "h" or after == "s" or elapsed_before else "M"
        kinds[index] = letter
    return kinds


def _part(kind: str, text: str, moment: dt.datetime, value: float, twelve: bool) -> str:
    size = len(text)
    if kind == "y":
        return f"{moment.year % 100:02d}" if size <= 2 else f"{moment.year:04d}"
    if kind == "M":
        name = _MONTHS[moment.month - 1]
        return {1: str(moment.month), 2: f"{moment.month:02d}", 3: name[:3], 5: name[0]}.get(
            size, name
        )
    if kind == "d":
        name = _DAYS[moment.weekday()]
        return {1: str(moment.day), 2: f"{moment.day:02d}", 3: name[:3]}.get(size, name)
    hour = (moment.hour % 12 or 12) if twelve else moment.hour
    number = {"h": hour, "m": moment.minute}.get(kind, moment.second)
    return f"{number:0{min(size, 2)}d}"
