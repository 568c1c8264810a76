"""Alerts' pure parts against their peers in the same run (issue 15), no database in the timed
paths.

- Rule evaluation: 10,000 rules (``load_rules`` of their YAML, once, untimed; the load's time is
  a metric row) over 1,000 series (600 latencies compared in ``ms``, 150 error ratios with a
  ``route`` label selector compared in ``%``, 150 memory sizes in ``MiB``, 50 anomaly scores, 50
  threat levels compared as strings), conditions of one to three comparisons with ``and``,
  ``or``, ``not`` and parentheses. A sweep evaluates every rule's ``Condition`` against a dict of
  the 1,000 values and moves its state with ``next_state`` (``for`` of 0, 1m or 5m), 30 s of
  evaluation time apart, the values alternating between two sets so that alerts go pending,
  fire and resolve. Peer: the same conditions as equivalent Python expressions (numbers
  normalised by their units, series as names), ``compile()``-d once and ``eval()``-ed with the
  same values in a dict, plus the same ``next_state``: the unsafe baseline the parser replaces.
  ``verify`` checks first that both agree on every rule with both value sets. Rows per sweep of
  all 10,000 rules, and the same samples per rule; and, in full runs only, the conditions alone
  (no ``next_state``).
- Template render: a typical alert (title, description, action required) with the formatting
  filters (``number``, ``currency``, ``datetime``, ``duration``, ``plural``, ``urgency_emoji``)
  and a loop over the labels, rendered by ``TemplateRenderer`` (the sandbox, the context copy,
  the budget, mrkdwn escaping) in the tenant's time zone: one row per locale of
  ``supported_locales()`` (8 of them with ``--quick``), and one cycling over those locales with
  its peers: the same templates in a plain ``jinja2.Environment`` (no sandbox, the same filters
  and escaping ``finalize``, one environment per locale made beforehand), and ``str.format`` with
  the same ``Formatter`` calls made directly.
- Blocks: ``build_message`` + ``validate_blocks`` of a long alert (a 9,000-character
  description, split into sections); peer: slack-sdk's ``Block.parse`` + ``validate_json`` of the
  same blocks, the part of the check slack-sdk does.
- Routing: ``route`` of an alert's labels on a tree of 100 tenants' routes (each with three
  children: a paging route with ``continue``, a ``match_re`` route, a ``match`` route) beside a
  platform route with ``continue``, group keys included, cycling over 1,000 alerts. Peer:
  amlint's ``Router.match`` (its simulation of Alertmanager's router) plus the group labels and a
  key from its path, and ``Router.match`` alone. ``verify`` checks the routes and receivers
  agree on every alert.

Fast calls are timed in batches and reported per call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import random
import time
from collections.abc import Callable, Mapping, Sequence
from types import CodeType
from typing import Any

import jinja2
from amlint.routing import GROUP_BY_ALL as AMLINT_GROUP_BY_ALL
from amlint.routing import Router
from slack_sdk.models.blocks import Block

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from tenantry.alerts import (
    AlertMessage,
    AlertRule,
    AlertState,
    Formatter,
    TemplateRenderer,
    build_message,
    escape_mrkdwn,
    load_rules,
    next_state,
    parse_route,
    route,
    supported_locales,
    urgency_emoji,
    validate_blocks,
)

__all__ = ["BENCHMARK"]

RULES = 10_000
SERIES = 1_000
ROUTE_BATCH = 250  # a quarter of the 1,000 alerts: every case cycles over the same 4 slices
RENDER_BATCH = 1
BLOCKS_BATCH = 5
TIME_ZONE = "Europe/Berlin"
#: The locales rendered with ``--quick`` (Latin, Cyrillic, RTL, CJK, and plural-rich ones).
QUICK_LOCALES = ("en", "de", "fr", "pl", "ru", "ar", "ja", "zh-Hant")

LOAD = "rules: load_rules, 10,000 rules of YAML (once)"
SWEEP = "rules: evaluate + next_state, all 10,000 rules over 1,000 series"
SWEEP_EVAL = "rules: eval() of compiled equivalents + next_state, all 10,000 rules"
PER_RULE = "rules: evaluate + next_state, per rule"
PER_RULE_EVAL = "rules: eval() of compiled equivalents + next_state, per rule"
COND = "rules: Condition.evaluate only, all 10,000 rules"
COND_EVAL = "rules: eval() only, all 10,000 rules"
RENDER_ALL = "template render, TemplateRenderer, locales cycled"
RENDER_JINJA = "template render, plain jinja2.Environment, locales cycled"
RENDER_FORMAT = "template render, str.format + Formatter calls, locales cycled"
RENDER_LOCALE = "template render, TemplateRenderer, locale "
BLOCKS = "blocks: build_message + validate_blocks, 9,000-char alert"
BLOCKS_SDK = "blocks: slack-sdk Block.parse + validate_json, same blocks"
ROUTE = "route: tenantry route(), 100-tenant tree, group keys"
ROUTE_AMLINT = "route: amlint Router.match + group keys, same tree"
ROUTE_AMLINT_BARE = "route: amlint Router.match alone, same tree"

_PER_RULE = {SWEEP: PER_RULE, SWEEP_EVAL: PER_RULE_EVAL}

# --- rules ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Series:
    key: str  # how our conditions name it (and the mapping's key)
    ident: str  # the Python expression's name for it
    kind: str  # latency, ratio, memory, score, threat


def _series() -> list[_Series]:
    kinds = [("latency", 600), ("ratio", 150), ("memory", 150), ("score", 50), ("threat", 50)]
    found: list[_Series] = []
    for kind, count in kinds:
        for i in range(count):
            key = {
                "latency": f"svc{i}_latency_p95",
                "ratio": f'error_rate{{route="/api/r{i}"}}',
                "memory": f"node{i}_memory_used",
                "score": f"tenant{i}.anomaly_score",
                "threat": f"tenant{i}.threat_level",
            }[kind]
            found.append(_Series(key, f"s{len(found)}", kind))
    assert len(found) == SERIES
    return found


def _values(series: Sequence[_Series], rng: random.Random) -> dict[str, float | str]:
    """One set of the series' values, by key (seconds, ratios, bytes, scores, levels)."""
    values: dict[str, float | str] = {}
    for s in series:
        if s.kind == "latency":
            values[s.key] = round(rng.uniform(0.005, 0.5), 4)
        elif s.kind == "ratio":
            values[s.key] = round(rng.uniform(0.0, 0.12), 4)
        elif s.kind == "memory":
            values[s.key] = float(rng.randrange(64, 2048) * 1024**2)
        elif s.kind == "score":
            values[s.key] = round(rng.random(), 3)
        else:
            values[s.key] = rng.choice(["low", "medium", "high"])
    return values


def _term(s: _Series, rng: random.Random) -> tuple[str, str]:
    """One comparison on ``s``: our text (with units) and Python's (normalised numbers)."""
    if s.kind == "threat":
        op = rng.choice(["==", "!="])
        level = rng.choice(["medium", "high"])
        return f'{s.key} {op} "{level}"', f"{s.ident} {op} {level!r}"
    op = rng.choice([">", ">=", "<", "<="])
    if s.kind == "latency":
        ms = rng.randrange(20, 400)
        return f"{s.key} {op} {ms}ms", f"{s.ident} {op} {ms / 1e3!r}"
    if s.kind == "ratio":
        pct = rng.randrange(1, 12)
        return f"{s.key} {op} {pct}%", f"{s.ident} {op} {pct / 100.0!r}"
    if s.kind == "memory":
        mib = rng.randrange(128, 2048)
        return f"{s.key} {op} {mib}MiB", f"{s.ident} {op} {mib * 1024.0**2!r}"
    score = rng.randrange(50, 99) / 100
    return f"{s.key} {op} {score}", f"{s.ident} {op} {score!r}"


def _condition(series: Sequence[_Series], rng: random.Random) -> tuple[str, str]:
    """A condition of one to three comparisons, ours and Python's (same precedence rules)."""
    a, b, c = (_term(rng.choice(series), rng) for _ in range(3))
    shape = rng.randrange(6)
    if shape == 0:
        return a
    if shape == 1:
        return f"{a[0]} and {b[0]}", f"{a[1]} and {b[1]}"
    if shape == 2:
        return f"{a[0]} or {b[0]}", f"{a[1]} or {b[1]}"
    if shape == 3:
        return f"{a[0]} and not {b[0]}", f"{a[1]} and not {b[1]}"
    if shape == 4:
        return f"({a[0]} or {b[0]}) and {c[0]}", f"({a[1]} or {b[1]}) and {c[1]}"
    return f"not ({a[0]} and {b[0]}) or {c[0]}", f"not ({a[1]} and {b[1]}) or {c[1]}"


@dataclasses.dataclass(slots=True)
class RuleSet:
    rules: list[AlertRule]
    python: list[CodeType]
    #: The two value sets, by our keys and by Python's names.
    ours: list[dict[str, float | str]]
    theirs: list[dict[str, float | str]]
    load_ms: float


def rule_set() -> RuleSet:
    rng = random.Random(15)
    series = _series()
    texts: list[str] = []
    python: list[CodeType] = []
    holds = ["0s", "1m", "5m"]
    for i in range(RULES):
        ours, theirs = _condition(series, rng)
        severity = rng.choice(["info", "warning", "high", "critical"])
        texts.append(
            f"  - name: rule_{i}\n"
            f"    condition: '{ours}'\n"
            f"    severity: {severity}\n"
            f"    for: {rng.choice(holds)}\n"
            f"    labels: {{team: team{i % 20}, tenant: t{i % 100}}}\n"
        )
        python.append(compile(theirs, f"<rule {i}>", "eval"))
    yaml_text = "alerts:\n" + "".join(texts)
    started = time.perf_counter()
    rules = load_rules(yaml_text)
    load_ms = (time.perf_counter() - started) * 1e3
    ours_values = [_values(series, rng) for _ in range(2)]
    theirs_values = [{s.ident: v[s.key] for s in series} for v in ours_values]
    return RuleSet(rules, python, ours_values, theirs_values, load_ms)


_NO_BUILTINS: dict[str, Any] = {"__builtins__": {}}


def verify_rules(rs: RuleSet) -> None:
    """Both evaluators agree on every rule with both value sets; some rules hold, some not."""
    assert len(rs.rules) == RULES
    for ours, theirs in zip(rs.ours, rs.theirs, strict=True):
        met = 0
        for rule, code in zip(rs.rules, rs.python, strict=True):
            holds = rule.condition.evaluate(ours)
            assert holds == bool(eval(code, _NO_BUILTINS, theirs)), rule.condition.source  # noqa: S307
            met += holds
        assert 0.2 * RULES < met < 0.8 * RULES, met


def rule_cases(rs: RuleSet) -> list[Case]:
    ours = [(rule.condition, rule.hold_for) for rule in rs.rules]
    theirs = [(code, rule.hold_for) for code, rule in zip(rs.python, rs.rules, strict=True)]
    start = dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)

    def sweeper(
        items: Sequence[tuple[Any, dt.timedelta]],
        value_sets: Sequence[Mapping[str, float | str]],
        holds_of: Callable[[Any, Mapping[str, float | str]], bool],
        with_state: bool,
    ) -> Callable[[], Any]:
        states = [AlertState()] * len(items)
        tick = [0]

        async def sweep() -> None:
            tick[0] += 1
            values = value_sets[tick[0] % 2]
            now = start + dt.timedelta(seconds=30 * tick[0])
            if not with_state:
                for condition, _ in items:
                    holds_of(condition, values)
                return
            for i, (condition, hold_for) in enumerate(items):
                holds = holds_of(condition, values)
                states[i] = next_state(states[i], holds, now, hold_for=hold_for)

        return sweep

    def evaluate(condition: Any, values: Mapping[str, float | str]) -> bool:
        return bool(condition.evaluate(values))

    def python_eval(code: Any, values: Mapping[str, float | str]) -> bool:
        return bool(eval(code, _NO_BUILTINS, values))  # noqa: S307 - the unsafe peer

    return [
        Case(SWEEP, sweeper(ours, rs.ours, evaluate, True), peer=SWEEP_EVAL),
        Case(SWEEP_EVAL, sweeper(theirs, rs.theirs, python_eval, True)),
        Case(COND, sweeper(ours, rs.ours, evaluate, False), peer=COND_EVAL),
        Case(COND_EVAL, sweeper(theirs, rs.theirs, python_eval, False)),
    ]


def per_rule(rows: Sequence[Row]) -> list[Row]:
    """The sweeps' rows again, per rule (a sweep's time over 10,000: p50 and p95 of those)."""
    derived = []
    for row in rows:
        name = _PER_RULE.get(row.operation)
        if name is None or row.p50_us is None or row.p95_us is None:
            continue
        peer = _PER_RULE.get(row.peer or "")
        derived.append(
            dataclasses.replace(
                row,
                operation=name,
                p50_us=round(row.p50_us / RULES, 3),
                p95_us=round(row.p95_us / RULES, 3),
                ops_per_s=None if row.ops_per_s is None else round(row.ops_per_s * RULES, 1),
                peak_kib=None,
                peer=peer,
                iterations=row.iterations * RULES,
                batch=RULES,
            )
        )
    return derived


# --- templates --------------------------------------------------------------------------------

TITLE = "{{ alert.severity | urgency_emoji }} {{ alert.name }}: {{ alert.summary }}"
DESCRIPTION = (
    "*{{ alert.name }}* is {{ alert.status }} since {{ alert.started | datetime('medium') }} "
    "({{ alert.active_for | duration }}).\n"
    "Value {{ alert.value | number(2) }}, threshold {{ alert.threshold | number }}; "
    "estimated cost {{ alert.cost | currency('EUR') }}.\n"
    "{{ alert.tenants | plural(one='# tenant affected', other='# tenants affected') }}"
    "{% for name, value in alert.labels.items() %} · {{ name }}={{ value }}{% endfor %}"
)
ACTION = (
    "{{ alert.severity | urgency_emoji }} Check <https://runbooks.example/db|the runbook> "
    "within {{ alert.respond_within | duration('minute') }}: {{ alert.action }}"
)
TEMPLATES = (TITLE, DESCRIPTION, ACTION)

TITLE_FORMAT = "{emoji} {name}: {summary}"
DESCRIPTION_FORMAT = (
    "*{name}* is {status} since {started} ({active_for}).\n"
    "Value {value}, threshold {threshold}; estimated cost {cost}.\n{tenants}{labels}"
)
ACTION_FORMAT = (
    "{emoji} Check <https://runbooks.example/db|the runbook> within {respond_within}: {action}"
)

CONTEXT: dict[str, Any] = {
    "alert": {
        "name": "db-primary-latency",
        "severity": "critical",
        "status": "firing",
        "summary": "p95 latency above 250 ms on <orders> & <payments>",
        "started": dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC),
        "active_for": 754,
        "value": 312.456,
        "threshold": 250,
        "cost": 1234.5,
        "tenants": 3,
        "labels": {"region": "eu-central-1", "team": "db", "service": "orders"},
        "respond_within": 900,
        "action": "fail over to the replica if the primary's disk queue stays above 50",
    }
}


def _finalize(value: object) -> str:
    return "" if value is None else escape_mrkdwn(str(value))


def plain_jinja(locale: str) -> list[jinja2.Template]:
    """The templates in an unsandboxed environment with the locale's filters and escaping."""
    env = jinja2.Environment(  # mrkdwn, not HTML: finalize escapes, as ours
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,  # noqa: S701
    )
    env.filters.update(Formatter.for_locale(locale, TIME_ZONE).filters())
    return [env.from_string(source) for source in TEMPLATES]


def with_format(formatter: Formatter, context: Mapping[str, Any]) -> list[str]:
    """The same message by ``str.format``, each value formatted and escaped as the templates do."""
    alert = context["alert"]
    e = escape_mrkdwn
    emoji = e(urgency_emoji(alert["severity"]))
    labels = "".join(f" · {e(k)}={e(v)}" for k, v in alert["labels"].items())
    return [
        TITLE_FORMAT.format(emoji=emoji, name=e(alert["name"]), summary=e(alert["summary"])),
        DESCRIPTION_FORMAT.format(
            name=e(alert["name"]),
            status=e(alert["status"]),
            started=e(formatter.datetime(alert["started"], "medium")),
            active_for=e(formatter.duration(alert["active_for"])),
            value=e(formatter.number(alert["value"], 2)),
            threshold=e(formatter.number(alert["threshold"])),
            cost=e(formatter.currency(alert["cost"], "EUR")),
            tenants=e(
                formatter.plural(
                    alert["tenants"], one="# tenant affected", other="# tenants affected"
                )
            ),
            labels=labels,
        ),
        ACTION_FORMAT.format(
            emoji=emoji,
            respond_within=e(formatter.duration(alert["respond_within"], "minute")),
            action=e(alert["action"]),
        ),
    ]


def verify_templates(renderer: TemplateRenderer, locales: Sequence[str]) -> None:
    """The three ways give the same message in every locale."""
    for locale in locales:
        ours = [renderer.render(s, CONTEXT, locale=locale, time_zone=TIME_ZONE) for s in TEMPLATES]
        jinja = [template.render(CONTEXT) for template in plain_jinja(locale)]
        formatted = with_format(Formatter.for_locale(locale, TIME_ZONE), CONTEXT)
        assert ours == jinja == formatted, (locale, ours, jinja, formatted)
        assert "&lt;orders&gt; &amp;" in ours[0]


def template_cases(locales: Sequence[str]) -> list[Case]:
    renderer = TemplateRenderer()
    verify_templates(renderer, locales)
    jinja = {locale: plain_jinja(locale) for locale in locales}
    formatters = {locale: Formatter.for_locale(locale, TIME_ZONE) for locale in locales}

    def cycled(render_one: Callable[[str], object]) -> Callable[[], Any]:
        turn = [0]

        async def run() -> None:
            turn[0] += 1
            render_one(locales[turn[0] % len(locales)])

        return run

    def ours(locale: str) -> list[str]:
        return [renderer.render(s, CONTEXT, locale=locale, time_zone=TIME_ZONE) for s in TEMPLATES]

    def one_locale(locale: str) -> Callable[[], Any]:
        async def run() -> None:
            ours(locale)

        return run

    cases = [
        Case(RENDER_ALL, cycled(ours), peer=RENDER_JINJA),
        Case(RENDER_JINJA, cycled(lambda loc: [t.render(CONTEXT) for t in jinja[loc]])),
        Case(
            RENDER_FORMAT, cycled(lambda loc: with_format(formatters[loc], CONTEXT)), RENDER_JINJA
        ),
    ]
    cases += [Case(RENDER_LOCALE + locale, one_locale(locale)) for locale in locales]
    return cases


def long_alert() -> AlertMessage:
    """A rendered alert with a 9,000-character description (paragraphs of escaped text)."""
    renderer = TemplateRenderer()
    title, description, action = (
        renderer.render(s, CONTEXT, locale="de", time_zone=TIME_ZONE) for s in TEMPLATES
    )
    paragraph = (
        "Tenant &lt;t{n}&gt;: p95 {n}1 ms over 5 minutes on /api/orders &amp; /api/payments, "
        "error rate {n}.4 %, 3 pods restarting; see <https://dash.example/t{n}|the dashboard>."
    )
    lines = [description]
    while sum(map(len, lines)) < 9_000:
        lines.append(paragraph.format(n=len(lines)))
    return AlertMessage(
        title=title,
        description="\n\n".join(lines),
        action_required=action,
        context=["eu-central-1", "team db", "firing since 11:00"],
    )


def block_cases() -> list[Case]:
    message = long_alert()
    built = build_message(message)
    validate_blocks(built.blocks, built.text)
    assert len(built.blocks) >= 5, len(built.blocks)
    assert not built.truncated

    def ours() -> None:
        done = build_message(message)
        validate_blocks(done.blocks, done.text)

    def sdk() -> None:
        for block in built.blocks:
            parsed = Block.parse(dict(block))
            assert parsed is not None
            parsed.validate_json()

    def batched(op: Callable[[], None]) -> Callable[[], Any]:
        async def run() -> None:
            for _ in range(BLOCKS_BATCH):
                op()

        return run

    return [
        Case(BLOCKS, batched(ours), peer=BLOCKS_SDK, batch=BLOCKS_BATCH),
        Case(BLOCKS_SDK, batched(sdk), batch=BLOCKS_BATCH),
    ]


# --- routing ----------------------------------------------------------------------------------

TENANTS = 100


def tenants_tree() -> dict[str, Any]:
    """The platform's route and each tenant's own routes, as Alertmanager's ``route:``."""
    routes: list[dict[str, Any]] = [
        {
            "matchers": ['scope="platform"'],
            "receiver": "platform-pager",
            "group_by": ["..."],
            "continue": True,
        }
    ]
    for t in range(TENANTS):
        routes.append(
            {
                "matchers": [f'tenant="t{t}"'],
                "receiver": f"t{t}-slack",
                "group_wait": "10s",
                "routes": [
                    {
                        "matchers": ['severity=~"high|critical"'],
                        "receiver": f"t{t}-pager",
                        "repeat_interval": "1h",
                        "continue": True,
                    },
                    {"match_re": {"service": "api.*"}, "receiver": f"t{t}-api", "group_by": []},
                    {"match": {"severity": "info"}, "receiver": f"t{t}-info"},
                ],
            }
        )
    return {"receiver": "platform-ops", "group_by": ["alertname", "tenant"], "routes": routes}


def alerts(count: int = 1000) -> list[dict[str, str]]:
    rng = random.Random(15)
    found = []
    for i in range(count):
        labels = {
            "alertname": f"rule_{i}",
            "tenant": f"t{rng.randrange(TENANTS + 10)}",  # a few of no tenant's route
            "severity": rng.choice(["info", "warning", "high", "critical"]),
            "service": rng.choice(["api", "api-gw", "web", "db"]),
        }
        if rng.random() < 0.1:
            labels["scope"] = "platform"
        found.append(labels)
    return found


def _amlint_keys(router: Router, labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """amlint's matches with group labels and a key, as ``route`` returns them."""
    found = []
    for match in router.match(labels):
        group_by = match.opts.group_by
        if group_by == (AMLINT_GROUP_BY_ALL,):
            chosen = sorted(labels.items())
        else:
            chosen = sorted((name, labels[name]) for name in group_by if name in labels)
        shown = ", ".join(f'{name}="{value}"' for name, value in chosen)
        found.append((match.opts.receiver or "", f"{'/'.join(match.path)}:{{{shown}}}"))
    return found


def verify_routing(config: dict[str, Any], labels_list: Sequence[dict[str, str]]) -> None:
    tree, router = parse_route(config), Router(config)
    receivers_seen = set()
    for labels in labels_list:
        ours = [(m.route.path, m.receiver, m.group_labels) for m in route(tree, labels)]
        theirs = [(m.path[-1], m.opts.receiver) for m in router.match(labels)]
        assert [(path, receiver) for path, receiver, _ in ours] == theirs, labels
        receivers_seen.update(receiver for _, receiver, _ in ours)
        assert [r for r, _ in _amlint_keys(router, labels)] == [r for _, r, _ in ours]
    assert len(receivers_seen) > 3 * TENANTS, len(receivers_seen)


def routing_cases() -> list[Case]:
    config = tenants_tree()
    labels_list = alerts()
    verify_routing(config, labels_list)
    tree, router = parse_route(config), Router(config)

    def batched(op: Callable[[dict[str, str]], object]) -> Callable[[], Any]:
        turn = [0]

        async def run() -> None:
            at = turn[0]
            turn[0] = (at + ROUTE_BATCH) % len(labels_list)
            for labels in labels_list[at : at + ROUTE_BATCH]:
                op(labels)

        return run

    return [
        Case(ROUTE, batched(lambda labels: route(tree, labels)), ROUTE_AMLINT, ROUTE_BATCH),
        Case(ROUTE_AMLINT, batched(lambda labels: _amlint_keys(router, labels)), None, ROUTE_BATCH),
        Case(ROUTE_AMLINT_BARE, batched(router.match), ROUTE_AMLINT, ROUTE_BATCH),
    ]


# --- the module -------------------------------------------------------------------------------


def _quick(plan: Plan) -> bool:
    return plan.seconds <= Plan.create(quick=True).seconds


def _locales(plan: Plan) -> tuple[str, ...]:
    tags = tuple(info.tag for info in supported_locales())
    return tuple(tag for tag in tags if tag in QUICK_LOCALES) if _quick(plan) else tags


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # no database
    rows: list[Row] = []
    if plan.wants_any((LOAD, SWEEP, SWEEP_EVAL, PER_RULE, PER_RULE_EVAL, COND, COND_EVAL)):
        rs = rule_set()
        verify_rules(rs)
        load = Metric(LOAD, lambda: rs.load_ms, "ms", count=RULES)
        rows += run_metrics([load], plan, module="alerts")
        # a per-rule row asks for its sweep: the same samples
        all_cases = rule_cases(rs)
        if _quick(plan):  # the conditions alone only in full runs (--quick stays ~10 s)
            all_cases = [c for c in all_cases if c.name not in (COND, COND_EVAL)]
        chosen = {c.name for c in all_cases if plan.wants(c.name)}
        chosen |= {s for s, r in _PER_RULE.items() if plan.wants(r)}
        chosen |= {c.peer for c in all_cases if c.name in chosen and c.peer}
        cases = [c for c in all_cases if c.name in chosen]
        sweep_plan = dataclasses.replace(plan, only=None)
        sweeps = await run_cases(cases, sweep_plan, module="alerts")
        rows += sweeps + per_rule(sweeps)
        del rs, all_cases, cases  # 10,000 rules no longer weigh on the collections below
        gc.collect()
    locales = _locales(plan)
    names = (RENDER_ALL, RENDER_JINJA, RENDER_FORMAT, *(RENDER_LOCALE + loc for loc in locales))
    if plan.wants_any(names):
        rows += await run_cases(template_cases(locales), plan, module="alerts")
    if plan.wants_any((BLOCKS, BLOCKS_SDK)):
        rows += await run_cases(block_cases(), plan, module="alerts")
    if plan.wants_any((ROUTE, ROUTE_AMLINT, ROUTE_AMLINT_BARE)):
        rows += await run_cases(routing_cases(), plan, module="alerts")
    return rows


def _operations() -> tuple[str, ...]:
    rules = (LOAD, SWEEP, SWEEP_EVAL, PER_RULE, PER_RULE_EVAL, COND, COND_EVAL)
    renders = (RENDER_ALL, RENDER_JINJA, RENDER_FORMAT)
    per_locale = tuple(RENDER_LOCALE + info.tag for info in supported_locales())
    others = (BLOCKS, BLOCKS_SDK, ROUTE, ROUTE_AMLINT, ROUTE_AMLINT_BARE)
    return rules + renders + per_locale + others


BENCHMARK = Benchmark(name="alerts", operations=_operations(), run=run)
