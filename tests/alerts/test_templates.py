"""The alert template renderer: mrkdwn escaping, the sandbox's refusals, and every cap."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.alerts import RenderLimits, TemplateRenderer, escape_mrkdwn
from tenantry.alerts.sandbox import compile_template
from tenantry.errors import ContentTooLarge, InvalidInput, TemplateError

RENDERER = TemplateRenderer()
ALERT = {
    "name": "db-primary",
    "severity": "critical",
    "status": "firing",
    "value": 1234.5,
    "count": 3,
    "started": dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC),
    "labels": {"region": "eu-central-1", "team": "<!subteam^S1>"},
}


def render(source: str, limits: RenderLimits | None = None, **context: object) -> str:
    renderer = TemplateRenderer(limits) if limits else RENDERER
    return renderer.render(source, {"alert": ALERT, **context})


def test_a_document_style_template_renders_in_the_locale_and_zone() -> None:
    source = (
        "{{ alert.severity | urgency_emoji }} *{{ alert.name }}* ({{ alert.status }})\n"
        "{{ alert.value | number }} · {{ alert.started | datetime('short') }} · "
        "{{ alert.count | plural('# Fehler', '# Fehler') }} · {{ alert.status | status_color }}"
    )
    text = RENDERER.render(source, {"alert": ALERT}, locale="de-AT", time_zone="Europe/Vienna")
    assert text == "🚨 *db-primary* (firing)\n1.234,5 · 06.12.26, 11:00 · 3 Fehler · #E01E5A"
    english = RENDERER.render("{{ alert.value | number }}", {"alert": ALERT}, locale="en")
    assert english == "1,234.5"


@pytest.mark.parametrize(
    "value",
    [
        "<!channel>",
        "<!here|here>",
        "<@U024BE7LH>",
        "<#C024BE7LR>",
        "<https://evil.example|click here>",
        "<!subteam^SAZ94GDB8>",
        "a & b > c < d",
        "&lt;!channel&gt;",  # already escaped text is escaped again: it shows as typed
    ],
)
def test_no_value_can_inject_a_mention_or_link(value: str) -> None:
    text = render("{{ v }}", v=value)
    assert "<" not in text
    assert ">" not in text
    assert text == escape_mrkdwn(value)


def test_every_way_a_value_reaches_the_output_is_escaped() -> None:
    evil = "<!channel>"
    outputs = [
        render("{{ v | upper }}", v=evil),
        render("{{ 'x' ~ v ~ 'y' }}", v=evil),
        render("{{ [v, v] | join(' ') }}", v=evil),
        render("{{ v | replace('c', 'C') }}", v=evil),
        render("{% for x in [v] %}{{ x }}{% endfor %}", v=evil),
        render("{% set s = v %}{{ s }}", v=evil),
        render("{{ alert.labels.team }}"),
        render("{{ alert.labels }}"),
        render("{{ '<!channel>' }}"),  # a literal inside {{ }} is a value too
        render("{{ x | default('<!here>') }}"),
        render("{{ v | plural('<!channel> #', '<!channel> #') }}", v=1),
    ]
    for text in outputs:
        assert "<!" not in text, text
        assert "&lt;!" in text, text


def test_the_templates_own_text_is_not_escaped() -> None:
    """The tenant wrote the template: its literal mentions and links are meant."""
    assert render("<!here> {{ v }} <https://runbook|runbook>", v="<x>") == (
        "<!here> &lt;x&gt; <https://runbook|runbook>"
    )


def test_ampersands_are_escaped_once_and_none_is_empty() -> None:
    assert render("{{ v }}|{{ n }}", v="R&D", n=None) == "R&amp;D|"


@given(st.text(max_size=200))
def test_escaping_is_lossless_and_leaves_no_brackets(value: str) -> None:
    text = render("{{ v }}", v=value)
    assert "<" not in text
    assert ">" not in text
    assert text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == value


ESCAPES = [
    # attribute chains to the interpreter
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ v.__class__.__mro__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ v.__init__.__globals__ }}",
    "{{ v.__class__.__init__.__globals__['os'] }}",
    "{{ v['__class__'] }}",
    "{{ v.__len__() }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ alert.get('name').__class__ }}",
    "{{ v.split.__self__.__class__ }}",
    "{{ range.__globals__ }}",
    # format-string attacks (CVE-2016-10745, CVE-2019-10906)
    "{{ '{0.__class__}'.format(v) }}",
    "{{ '{0.__class__.__mro__}'.format_map({'0': v}) }}",
    "{{ '{x.__class__}'.format_map({'x': v}) }}",
    "{{ v.format_map }}",
    # stored or indirect references to str.format (CVE-2024-56326, CVE-2025-27516)
    "{% set f = v.format %}{{ f('{0.__class__}', v) }}",
    "{{ v['format']('{0.__class__}', v) }}",
    "{{ (v | map('attr', 'format') | list)[0]('{0.__class__}', v) }}",
    "{{ [v.format][0]('{0.__class__}', v) }}",
    "{{ '%s' % v }}",
    # the attr filter (CVE-2024-56326 family: reaching format through attr)
    "{{ v | attr('__class__') }}",
    "{{ v | attr('format') }}",
    "{{ (v | map(attribute='__class__')) | list }}",
    "{{ v.__class__ | default('fine') }}",
    # Jinja2's own globals and the template reference
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    # mutation of builtin containers
    "{{ (v | list).pop() }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{{ [].append(1) }}",
    # things that do not exist here
    "{{ config }}",
    "{{ request.application }}",
    "{{ v | safe }}",
    "{{ v | center(100) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused(source: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, v="text")
    detail = raised.value.detail
    assert detail.startswith("line 1: "), detail
    reasons = ("refused: ", "undefined: ", "No filter named", "% formatting is not available")
    assert any(why in detail for why in reasons), detail
    assert "Traceback" not in detail
    assert 'File "' not in detail


NESTED = (
    "{% set a = range(1000) | list %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
    "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c, c] %}"
    "{% set e = [d, d, d, d, d, d, d, d, d, d] %}{% set e2 = [d, d] %}"
)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ range(10**9) | list }}", "range() of 1000000000 numbers"),
        ("{% for i in range(10**9) %}{% endfor %}", "range() of 1000000000 numbers"),
        ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "looped"),
        ("{{ 'a' * 10**9 }}", "beyond the output cap"),
        ("{{ [1] * 10**9 }}", "heavier than 50000"),
        # nested references: each literal is small, what str() or == would walk is not
        (NESTED + "{{ e }}", "heavier than 50000"),
        (NESTED + "{{ e ~ '' }}", "heavier than 50000"),
        (NESTED + "{{ e | join }}", "heavier than 50000"),
        (NESTED + "{{ e == e2 }}", "heavier than 50000"),
        (NESTED + "{{ dict(x=e, y=e) }}", "heavier than 50000"),
        ("{% set n = (2 ** 60) ** 16 %}{{ [n, n, n, n, n, n, n, n] * 200 }}", "heavier than 50000"),
        ("{{ 10 ** 100000 }}", "more than 64"),
        ("{{ (2 ** 60) ** 60 * (2 ** 60) ** 60 * (2 ** 60) ** 60 }}", "above 2**1024"),
        ("{{ '%0999999999d' % 1 }}", "% formatting is not available"),
        ("{{ v.ljust(10**9) }}", "refused"),
        ("{{ v.center(10**9) }}", "refused"),
        ("{{ v.zfill(10**9) }}", "refused"),
        ("{{ v | wordwrap(10**9) }}", "No filter named 'wordwrap'"),
        ("{{ range(1000) | join('x' * 100) }}", "beyond the output cap"),
        ("{{ ('x' * 1000) | replace('x', 'yyyyyyyyyyyyyyyyyyyy') }}", "beyond the output cap"),
        ("{% set a = 'x' * 5000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a | length }}", "cap"),
        ("{% set a = 'x' * 8000 %}{{ a + a }}", "beyond the output cap"),
        ("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", "output exceeds 12000"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ missing }}", "undefined: 'missing' is undefined"),
        ("{{ alert.value | currency('XYZ') }}", "filter currency: 'XYZ'"),
        ("{{ alert.name | number }}", "filter number: 'db-primary' is not a number"),
    ],
)
def test_caps_and_errors(source: str, reason: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, v="text")
    assert reason in raised.value.detail
    assert "Traceback" not in raised.value.detail


def test_a_long_loop_is_stopped_by_the_time_budget() -> None:
    limits = RenderLimits(max_seconds=0.05, max_iterations=10**8, max_range=10**4)
    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"took longer than 0\.05 s"):
        render(source, limits)


def test_errors_name_the_template_line() -> None:
    with pytest.raises(TemplateError, match=r"^line 3: undefined: 'nope' is undefined"):
        render("{{ alert.name }}\nfine\n{{ nope }}")
    with pytest.raises(TemplateError, match=r"^line 2: "):
        RENDERER.check("ok\n{% if %}")


@pytest.mark.parametrize(
    "source",
    [
        "{% include 'other' %}",
        "{% import 'other' as o %}",
        "{% from 'other' import m %}",
        "{% extends 'base' %}",
        "{% macro m() %}x{% endmacro %}",
        "{% call range(1) %}x{% endcall %}",
        "{% filter upper %}{{ v }}{% endfilter %}",
        "{% set s %}{{ v }}{% endset %}",
        "{% autoescape true %}{{ v }}{% endautoescape %}",
        "{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}",
    ],
)
def test_constructs_that_load_or_capture_are_refused(source: str) -> None:
    with pytest.raises(TemplateError, match="cannot be used"):
        RENDERER.check(source)


def test_the_template_size_is_capped() -> None:
    limits = RenderLimits(max_source_chars=100)
    with pytest.raises(ContentTooLarge, match="101 characters"):
        TemplateRenderer(limits).render("x" * 101, {})
    assert TemplateRenderer(limits).render("x" * 100, {}) == "x" * 100
    with pytest.raises(TemplateError, match="nests"):
        RENDERER.check("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")


def test_keys_named_like_dict_methods_are_data() -> None:
    labels = {"update": "v2", "copy": "c", "get": "shadowed by dict.get"}
    assert render("{{ l.update }} {{ l.copy }} {{ l['get'] }}", l=labels) == (
        "v2 c shadowed by dict.get"
    )
    with pytest.raises(TemplateError, match="refused: access to attribute 'pop'"):
        render("{{ l.pop }}", l=labels)


def test_literals_and_unpacking_still_work() -> None:
    source = (
        "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% for x in (3, 4) %}{{ x }}{% endfor %}"
        "{{ {'k': [5, 6]}['k'][1] }}{{ [1, 2][0] }}{{ (1, 2, 3)[1:] }}"
    )
    assert render(source) == "123461(2, 3)"


def test_loops_and_values_within_the_caps_work() -> None:
    source = (
        "{% for k, v in alert.labels | dictsort %}{{ loop.index }}.{{ k }}={{ v }} {% endfor %}"
        "{{ range(3) | sum }} {{ alert.name.upper().split('-') | join('/') }}"
        "{{ ' ' ~ alert.labels.get('region') }}"
    )
    expected = "1.region=eu-central-1 2.team=&lt;!subteam^S1&gt; 3 DB/PRIMARY eu-central-1"
    assert render(source) == expected


class Level(StrEnum):
    CRITICAL = "critical"


def test_the_context_is_plain_data() -> None:
    assert render("{{ lvl | urgency_emoji }} {{ lvl }}", lvl=Level.CRITICAL) == "🚨 critical"
    assert render("{{ d | duration }}", d=dt.timedelta(minutes=5)) == "5 minutes"

    class Row:
        name = "secret"

    with pytest.raises(InvalidInput, match=r"holds a Row at context\.row"):
        render("{{ row.name }}", row=Row())
    with pytest.raises(InvalidInput, match="non-string key"):
        render("{{ m }}", m={1: "x"})
    deep: object = "x"
    for _ in range(20):
        deep = [deep]
    with pytest.raises(InvalidInput, match="too large or too deep"):
        render("{{ d }}", d=deep)
    with pytest.raises(ContentTooLarge, match="too much text"):
        render("{{ t | length }}", t="x" * 300_000)


def test_the_locale_and_zone_are_checked() -> None:
    with pytest.raises(InvalidInput, match="invalid locale"):
        RENDERER.render("x", {}, locale="no such")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        RENDERER.render("x", {}, time_zone="Nowhere/City")


def test_a_template_must_be_a_string() -> None:
    with pytest.raises(TemplateError, match="a template is a string"):
        RENDERER.check(b"{{ x }}")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in [1] %}" * 30 + "{% endfor %}" * 30,  # Python's 20 nested blocks
        "{% if 1 %}" * 120 + "{% endif %}" * 120,  # Python's 100 levels of indentation
        "{{ " + "[" * 400 + "]" * 400 + " }}",  # the parser's recursion
    ],
)
def test_deep_nesting_is_a_template_error(source: str) -> None:
    with pytest.raises(TemplateError, match="nests expressions or blocks too deeply"):
        RENDERER.check(source)


def test_a_compiled_template_runs_only_within_a_budget() -> None:
    """Rendering around the renderer (no budget, no caps) fails on the first guarded step."""
    template = compile_template("{% for i in range(3) %}{{ i }}{% endfor %}")
    with pytest.raises(TemplateError, match=r"only inside TemplateRenderer\.render"):
        template.render()
    assert RENDERER.render("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"
